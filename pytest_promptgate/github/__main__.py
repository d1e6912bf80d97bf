"""``python -m pytest_promptgate.github comment|issues|annotate|outputs ...``."""

import sys

from pytest_promptgate.github.cli import main

sys.exit(main())
