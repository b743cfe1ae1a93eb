"""`python -m edgematting`: the same command line as `edgematting`."""
import sys

from .cli import main

sys.exit(main())
