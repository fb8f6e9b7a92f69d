"""`python -m reconciler` runs the command line."""

import sys

from reconciler.cli import main

sys.exit(main())
