"""Only what pyproject.toml cannot say: the wheel carries the top-level sample files.

``config.toml``, ``samples/task-table.txt`` and ``templates/report_template.xlsx`` stay at the top
of the source tree, where offices look for them; the build copies them into ``automation/data/``
inside the wheel (read with :func:`automation.data.bundled`), so there is one copy to edit.
"""

import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

sys.path.insert(0, str(Path(__file__).parent))
from automation.data import BUNDLED  # noqa: E402  (the one list of what is bundled)


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "automation" / "data"
        target.mkdir(parents=True, exist_ok=True)
        for rel in BUNDLED:
            shutil.copy2(Path(__file__).parent / rel, target / Path(rel).name)


setup(cmdclass={"build_py": BuildWithData})
