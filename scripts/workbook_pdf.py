"""Convert a workbook to PDF with headless LibreOffice (and optionally to PNG pages) to look at it.

    python scripts/workbook_pdf.py WORKBOOK.xlsx [OUT_DIR] [--png]

Uses a private LibreOffice profile (``-env:UserInstallation``): a LibreOffice already running
on the default profile would otherwise make ``--convert-to`` exit 0 without writing anything,
which is why the output file is checked explicitly.  ``--png`` renders every page with
pdftoppm (poppler-utils) at 80 dpi for a quick visual check of cut-off text and page size.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["convert_to_pdf", "pdf_to_png"]


def convert_to_pdf(workbook: Path, out_dir: Path, timeout: float = 120) -> Path:
    """Write ``out_dir/<stem>.pdf`` and return its path; raise RuntimeError when nothing was written."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        raise RuntimeError("找不到 LibreOffice（soffice），请安装 libreoffice-calc。")
    workbook = Path(workbook).resolve()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / (workbook.stem + ".pdf")
    if target.exists():
        target.unlink()
    with tempfile.TemporaryDirectory(prefix="lo-profile-") as profile:
        result = subprocess.run(
            [soffice, f"-env:UserInstallation=file://{profile}", "--headless", "--norestore",
             "--convert-to", "pdf", "--outdir", str(out_dir), str(workbook)],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
    if not target.exists() or target.stat().st_size == 0:
        raise RuntimeError(f"LibreOffice 没有生成 {target.name}（退出码 {result.returncode}）：{result.stderr.strip()}")
    return target


def pdf_to_png(pdf: Path, dpi: int = 80) -> list[Path]:
    """Render every page of ``pdf`` to ``<stem>-N.png`` next to it (pdftoppm)."""
    prefix = pdf.with_suffix("")
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", str(pdf), str(prefix)], check=True, timeout=120)
    return sorted(pdf.parent.glob(prefix.name + "-*.png"))


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    if not args:
        print(__doc__)
        return 2
    workbook = Path(args[0])
    out_dir = Path(args[1]) if len(args) > 1 else workbook.parent
    pdf = convert_to_pdf(workbook, out_dir)
    print(pdf)
    if "--png" in argv:
        for png in pdf_to_png(pdf):
            print(png)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
