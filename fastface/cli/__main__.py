"""``python -m fastface.cli ...``: the ``fastface`` command."""
import sys

from fastface.cli import main

sys.exit(main())
