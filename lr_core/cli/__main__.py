"""``python -m lr_core.cli ARGS``: the ``lr`` console script without installing the package."""
import sys

from lr_core.cli import main

sys.exit(main())
