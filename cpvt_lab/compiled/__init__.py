"""Compiled training: ``guard`` compiles a network and checks it against eager before it trains (every compiled
run passes it); ``agreement`` trains whole runs compiled beside eager, ``python -m cpvt_lab.compiled``, on the
bench's device defaults and with the provenance every record carries (``cpvt_lab.provenance``)."""
