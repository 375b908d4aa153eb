"""What the package ships besides code: the sample config, task table and workbook template.

The one copy of each lives at the top of the source tree, where offices look for them
(``config.toml``, ``samples/task-table.txt``, ``templates/report_template.xlsx``); building the
wheel copies them into this folder (see ``setup.py``), so an installed package carries them
without a second copy to keep in step.  :func:`bundled` finds them either way: in the installed
package, else in the source tree (an editable install or a checkout).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["BUNDLED", "bundled", "bundled_files"]

#: Where each bundled file sits relative to a project folder (and the demo's working folder).
BUNDLED = ("config.toml", "samples/task-table.txt", "templates/report_template.xlsx",
           "templates/notice_template.docx")

_SOURCE_ROOT = Path(__file__).resolve().parents[2]


def bundled(relative: str) -> Path | None:
    """The bundled file ``relative`` (one of :data:`BUNDLED`), or None when neither copy exists."""
    packaged = resources.files(__name__) / Path(relative).name
    if packaged.is_file():
        return Path(str(packaged))
    source = _SOURCE_ROOT / relative
    return source if source.is_file() else None


def bundled_files() -> dict[str, Path | None]:
    """Every bundled file by its relative place (None where missing)."""
    return {rel: bundled(rel) for rel in BUNDLED}
