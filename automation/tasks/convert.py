"""Old office formats (.doc, .wps, .et) converted by LibreOffice, where it is installed.

No maintained Python library reads .doc or WPS files; LibreOffice does, headless
(:func:`automation.office.convert`).  The copy is written to a temporary folder (the original is
never touched) and read as .docx / .xlsx.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from automation import office

__all__ = ["LEGACY_SUFFIXES", "converted"]

#: Old format -> the format LibreOffice converts it to.
LEGACY_SUFFIXES = {".doc": "docx", ".wps": "docx", ".et": "xlsx"}
_TIMEOUT = 120  # seconds: a big .doc takes LibreOffice a few seconds; a hung one must not hang us


@contextmanager
def converted(path: Path) -> Iterator[Path]:
    """A temporary .docx/.xlsx copy of an old-format file, converted by LibreOffice."""
    target = LEGACY_SUFFIXES[path.suffix.lower()]
    kind = "Word 文档" if target == "docx" else "表格"
    how = (f"请在 WPS 或 Word/Excel 中打开该文件，“另存为” .{target}（{kind}）后再导入；"
           "或安装 LibreOffice（免费）后重试，程序会自动转换。")
    with tempfile.TemporaryDirectory(prefix="duban-convert-") as tmp:
        # An ASCII name in a private folder: LibreOffice's command line is unreliable with some names.
        source = Path(tmp) / f"source{path.suffix.lower()}"
        shutil.copyfile(path, source)
        out = office.convert(source, target, Path(tmp) / "out", timeout=_TIMEOUT, how=how, name=path.name)
        yield out
