"""`python -m agent` is the same as the `matthan-agent` console script."""

import sys

from agent.cli import main

sys.exit(main())
