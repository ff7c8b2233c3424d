"""``python -m bayes_scaling.cli``: the ``bayes-scaling`` command."""

import sys

from . import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
