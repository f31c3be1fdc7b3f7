"""``python -m gfcore train|sample|eval|mesh ...`` and ``python -m gfcore --version``: see :mod:`gfcore.cli`."""
import sys

from gfcore.cli import main

sys.exit(main())
