"""Kept for old command lines: runs ``python -m pytest_behavior.local.server``."""

import sys

if __name__ == "__main__":
    from pytest_behavior.local.server import main

    sys.exit(main())
