"""``python -m devkit.demo``: the terminal demo (see :mod:`devkit.demo`)."""

import sys

from devkit.demo.terminal import main

sys.exit(main())
