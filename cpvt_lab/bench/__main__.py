"""``python -m cpvt_lab.bench``: see cpvt_lab/bench/command.py."""
import sys

from .command import main

sys.exit(main())
