"""Ember's benchmark suite against NumPy (and PyTorch when installed): the same as `ember bench`.

Usage: python benchmarks/run_suite.py [--quick] [--json PATH] [--only NAME ...] [--numpy-threads N]
The workloads, their correctness checks and the report are in ember.bench (frontend/bench/).
"""

import sys

from ember.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
