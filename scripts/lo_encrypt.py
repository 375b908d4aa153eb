"""Save workbooks with an opening password through a real LibreOffice (for the hostile corpus).

Run with the *system* Python that has LibreOffice's ``uno`` module (Debian: python3-uno):

    /usr/bin/python3 scripts/lo_encrypt.py SOURCE.xlsx OUT.xls [OUT.xlsx ...]

Each OUT is written with the filter its suffix implies (.xls: "MS Excel 97", .xlsx: "Calc MS
Excel 2007 XML", .ods: "calc8") and the password ``duban``.  ``scripts/make_hostile_corpus.py
--libreoffice`` calls this to regenerate ``tests/fixtures/hostile/encrypted_lo.xls``; msoffcrypto
cannot encrypt the binary .xls format, LibreOffice can.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from lo_fill import prop, start_office, stop_office  # same folder; system python3-uno

FILTERS = {".xls": "MS Excel 97", ".xlsx": "Calc MS Excel 2007 XML", ".ods": "calc8"}
PASSWORD = "duban"


def main(argv: list[str]) -> int:
    source, outputs = Path(argv[0]).resolve(), [Path(a).resolve() for a in argv[1:]]
    with tempfile.TemporaryDirectory(prefix="lo-profile-") as tmp:
        proc, _ctx, desktop = start_office(Path(tmp) / "profile")
        try:
            doc = desktop.loadComponentFromURL(source.as_uri(), "_blank", 0, (prop("Hidden", True),))
            try:
                for out in outputs:
                    doc.storeToURL(out.as_uri(), (prop("FilterName", FILTERS[out.suffix.lower()]),
                                                  prop("Password", PASSWORD), prop("Overwrite", True)))
            finally:
                doc.close(True)
        finally:
            stop_office(proc, desktop)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
