"""``python -m automation`` runs the same CLI as the ``automation`` console script."""

import sys

from automation.cli import main

sys.exit(main())
