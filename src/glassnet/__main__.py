"""``python -m glassnet ...``: the ``glassnet`` command without its console script."""

import sys

from glassnet.cli import main

sys.exit(main())
