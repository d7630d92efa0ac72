"""``python -m mediasync.emulator``: the same as ``mediasync emulator``."""

import sys

from . import main

sys.exit(main())
