"""``python -m model.cli`` runs the ``knowpain`` command."""

import sys

from model.cli import main

sys.exit(main())
