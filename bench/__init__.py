"""Benchmarks for SoraStudio Cloud: cold starts, Redis round trips, throughput (``python -m bench``).

Every number is reported beside a baseline measured in the same run, because the machines are
shared and noisy. The bench process writes no bytecode, so it never leaves ``__pycache__`` in
``sorastudio/`` behind that would make later cold starts look cheaper than they are.
"""

import sys

sys.dont_write_bytecode = True
