"""`python -m astra.entrypoints.cli`: the same as the `astra` console script."""

import sys

from astra.entrypoints.cli import main

sys.exit(main())
