"""``python -m hipscreen``: the command line (same as the ``hipscreen`` command)."""

import sys

from hipscreen._cli import main

sys.exit(main())
