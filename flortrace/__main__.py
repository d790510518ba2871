"""``python -m flortrace``."""

import sys

from .cli import main

sys.exit(main())
