"""The `ember` command line. Subcommands (compile, run, inspect, bench) arrive with later issues."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="ember", description="Ember: a deep-learning graph compiler with the MXNet 1.x API."
    )
    parser.add_argument("--version", action="version", version=f"ember {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `ember` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not vars(args):
        parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
