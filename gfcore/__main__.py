"""``python -m gfcore train|sample|eval|mesh ...``: see :mod:`gfcore.cli`."""
import sys

from gfcore.cli import main

sys.exit(main())
