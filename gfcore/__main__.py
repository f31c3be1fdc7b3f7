"""``python -m gfcore train|sample ...``: see :mod:`gfcore.cli`."""
import sys

from gfcore.cli import main

sys.exit(main())
