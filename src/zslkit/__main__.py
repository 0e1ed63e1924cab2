import sys

from zslkit.cli import main

sys.exit(main())
