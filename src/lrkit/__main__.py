"""``python -m lrkit``: the same as the ``lrkit`` command."""

import sys

from lrkit.cli import main

if __name__ == "__main__":
    sys.exit(main())
