"""LibreOffice, where it is installed: converting documents headless (.doc → .docx, .docx → .pdf…).

One place for the details every conversion needs: a private profile per run
(``-env:UserInstallation``: a LibreOffice already open on the default profile would otherwise make
``--convert-to`` exit 0 without writing anything, so the output is checked explicitly), a timeout,
and a one-line Chinese error that says how to do it by hand when LibreOffice is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from automation.errors import InputError

__all__ = ["soffice", "convert"]


#: Where the installers put it when it is not on PATH (the usual case on Windows and macOS).
_INSTALLED = (r"C:\Program Files\LibreOffice\program\soffice.exe",
              r"C:\Program Files (x86)\LibreOffice\program\soffice.exe",
              "/Applications/LibreOffice.app/Contents/MacOS/soffice")


def soffice() -> str | None:
    """The LibreOffice executable, or None when it is not installed."""
    found = shutil.which("soffice") or shutil.which("libreoffice")
    return found or next((p for p in _INSTALLED if os.path.exists(p)), None)


def convert(source: Path, fmt: str, out_dir: Path, *, timeout: float = 180, how: str = "",
            name: str | None = None) -> Path:
    """Convert ``source`` to ``fmt`` (``pdf``, ``docx``, ``xlsx``…) into ``out_dir``; returns the new file.

    ``how``: what the user can do instead (e.g. "请在 WPS 中另存为 .docx"), added to the error;
    ``name``: the file name the error names (the user's, when ``source`` is a temporary copy).
    """
    shown = name or Path(source).name
    exe = soffice()
    if exe is None:
        raise InputError(f"{shown}：需要 LibreOffice 才能转换为 .{fmt}，而本机没有安装 LibreOffice。{how}".rstrip())
    source = Path(source).resolve()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{source.stem}.{fmt.split(':')[0]}"
    target.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="lo-profile-") as profile:
        try:
            result = subprocess.run(
                [exe, f"-env:UserInstallation={Path(profile).as_uri()}", "--headless", "--norestore",
                 "--convert-to", fmt, "--outdir", str(out_dir), str(source)],
                capture_output=True, text=True, timeout=timeout, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise InputError(f"{shown}：LibreOffice 转换超时（{timeout:.0f} 秒）。{how}".rstrip()) from exc
    if not target.exists() or target.stat().st_size == 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [f"退出码 {result.returncode}"]
        raise InputError(f"{shown}：LibreOffice 未能转换为 .{fmt}（{detail[0][:120]}）。{how}".rstrip())
    return target
