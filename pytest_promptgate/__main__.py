import sys

from pytest_promptgate.cli import main

sys.exit(main())
