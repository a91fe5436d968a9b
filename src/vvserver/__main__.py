import sys

from vvserver.cli import main

sys.exit(main())
