"""gpt_mini: a NumPy GPT-2 and the five stages that train it (00_pretrain ... 04_rlvr)."""

import importlib


def stage(name):
    """The stage module `gpt_mini.<name>`, e.g. stage("00_pretrain"): a name starting with a digit can't be
    written in an `import` statement, so widgets, tests and later stages reach a stage through this."""
    return importlib.import_module(f"{__name__}.{name}")
