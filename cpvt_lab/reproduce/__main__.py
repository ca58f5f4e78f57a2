"""``python -m cpvt_lab.reproduce``: see cpvt_lab/reproduce/command.py."""
import sys

from .command import main

sys.exit(main())
