"""Checkpoints as one .npz: the config, the tokenizer and the params, loadable natively and in Pyodide.

Strings are stored as JSON in 0-d unicode arrays so that loading never needs pickle.
"""

import io
import json

import numpy as np

from .model import GPTConfig, param_shapes
from .tokenizer import CharTokenizer


def save(path_or_file, config, tokenizer, params, meta=None):
    arrays = {f"param/{k}": v for k, v in params.items()}
    arrays["config"] = np.array(json.dumps(config.to_dict()))
    arrays["tokenizer"] = np.array(json.dumps(tokenizer.to_dict()))
    arrays["meta"] = np.array(json.dumps(meta or {}))
    np.savez(path_or_file, **arrays)


def load(source):
    """(config, tokenizer, params, meta) from a path, a file object or raw bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    with np.load(source, allow_pickle=False) as z:
        config = GPTConfig(**json.loads(str(z["config"])))
        tokenizer = CharTokenizer.from_dict(json.loads(str(z["tokenizer"])))
        meta = json.loads(str(z["meta"]))
        params = {k[len("param/"):]: z[k] for k in z.files if k.startswith("param/")}
    expected = param_shapes(config)
    if set(params) != set(expected):
        missing, extra = set(expected) - set(params), set(params) - set(expected)
        raise ValueError(f"checkpoint params do not match its config: missing {sorted(missing)[:3]}, "
                         f"unexpected {sorted(extra)[:3]}")
    for k, shape in expected.items():
        if params[k].shape != shape:
            raise ValueError(f"checkpoint param {k} has shape {params[k].shape}, config says {shape}")
    return config, tokenizer, {k: params[k] for k in expected}, meta
