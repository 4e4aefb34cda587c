import sys

from sklearn_derand.cli import main

sys.exit(main())
