"""`python -m pvrec` runs the command line."""

from pvrec.cli import main

raise SystemExit(main())
