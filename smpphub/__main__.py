"""``python -m smpphub``: the same as the ``smpphub`` command."""

import sys

from smpphub.cli import main

sys.exit(main())
