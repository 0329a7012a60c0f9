"""``python -m matsense`` runs the command line (see :mod:`matsense.cli`)."""

import sys

from .cli import main

sys.exit(main())
