"""A corpus of hostile model files, built at test time (see :mod:`hostile.build`).

Imported as ``hostile`` (``tests/`` is on ``sys.path`` through its ``conftest.py``).
"""

from hostile.build import CALLABLES, CASES, EXECUTING, Hostile, build_corpus, graft_payloads

__all__ = ["CALLABLES", "CASES", "EXECUTING", "Hostile", "build_corpus", "graft_payloads"]
