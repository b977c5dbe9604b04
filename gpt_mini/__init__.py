"""gpt_mini: a NumPy GPT-2 and the five stages that train it (00_pretrain ... 04_rlvr)."""

import argparse
import importlib
from pathlib import Path


def stage(name):
    """The stage module `gpt_mini.<name>`, e.g. stage("00_pretrain"): a name starting with a digit can't be
    written in an `import` statement, so widgets, tests and later stages reach a stage through this."""
    return importlib.import_module(f"{__name__}.{name}")


def stage_parser(description):
    """The command line every stage script shares: `--quick` (a tiny run for tests) and `--out DIR`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a tiny run (tests); doesn't touch the shipped files")
    parser.add_argument("--out", type=Path, default=None, help="folder holding checkpoints/ (read and written) and "
                        "results/ (default: the repository, or ./quick-run with --quick)")
    return parser
