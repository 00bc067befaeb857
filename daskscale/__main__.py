import sys

from daskscale.cli import main

sys.exit(main())
