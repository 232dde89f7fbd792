"""``python -m smpphub.bench.fuzz --target codec|server --seconds N``: see :mod:`.cli`."""

import sys

from .cli import main

sys.exit(main())
