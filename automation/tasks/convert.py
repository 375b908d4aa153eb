"""Old office formats (.doc, .wps, .et) converted by LibreOffice, where it is installed.

No maintained Python library reads .doc or WPS files; LibreOffice does, headless.  The copy is
written to a temporary folder (the original is never touched) and read as .docx / .xlsx.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from automation.errors import InputError

__all__ = ["LEGACY_SUFFIXES", "converted", "soffice"]

#: Old format -> the format LibreOffice converts it to.
LEGACY_SUFFIXES = {".doc": "docx", ".wps": "docx", ".et": "xlsx"}
_TIMEOUT = 120  # seconds: a big .doc takes LibreOffice a few seconds; a hung one must not hang us


def soffice() -> str | None:
    """The LibreOffice program, if installed."""
    for name in ("soffice", "libreoffice"):
        found = shutil.which(name)
        if found:
            return found
    for candidate in (r"C:\Program Files\LibreOffice\program\soffice.exe",
                      "/Applications/LibreOffice.app/Contents/MacOS/soffice"):
        if os.path.exists(candidate):
            return candidate
    return None


def _refuse(path: Path, target: str, why: str) -> InputError:
    kind = "Word 文档" if target == "docx" else "表格"
    return InputError(
        f"{path.name}：{why}。请在 WPS 或 Word/Excel 中打开该文件，“另存为” .{target}（{kind}）后再导入；"
        "或安装 LibreOffice（免费）后重试，程序会自动转换。"
    )


@contextmanager
def converted(path: Path) -> Iterator[Path]:
    """A temporary .docx/.xlsx copy of an old-format file, converted by LibreOffice."""
    target = LEGACY_SUFFIXES[path.suffix.lower()]
    program = soffice()
    if program is None:
        raise _refuse(path, target, f"旧版 {path.suffix} 文件需要先转换，而本机没有安装 LibreOffice")
    with tempfile.TemporaryDirectory(prefix="duban-convert-") as tmp:
        work = Path(tmp)
        # A private profile: a LibreOffice the user has open must not block or be disturbed.
        profile = (work / "profile").as_uri()
        source = work / f"source{path.suffix.lower()}"
        shutil.copyfile(path, source)
        try:
            subprocess.run(
                [program, f"-env:UserInstallation={profile}", "--headless", "--convert-to", target,
                 "--outdir", str(work), str(source)],
                capture_output=True, timeout=_TIMEOUT, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise _refuse(path, target, f"LibreOffice 转换超过 {_TIMEOUT} 秒仍未完成") from exc
        out = work / f"source.{target}"
        if not out.exists() or out.stat().st_size == 0:
            raise _refuse(path, target, "LibreOffice 无法转换该文件（可能已损坏或被加密）")
        yield out
