"""``python -m cpvt_lab.compiled``: see cpvt_lab/compiled/agreement.py."""
import sys

from .agreement import main

sys.exit(main())
