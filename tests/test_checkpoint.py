import io

import numpy as np
import pytest

from gpt_mini import checkpoint
from gpt_mini.model import GPT, GPTConfig
from gpt_mini.tokenizer import CharTokenizer


def test_round_trip_through_path_file_and_bytes(tmp_path):
    config = GPTConfig(vocab_size=10, block_size=8, n_layer=2, n_head=2, n_embd=8)
    tok = CharTokenizer.from_text("abcdef")
    params = GPT(config, seed=0).params
    path = tmp_path / "ck.npz"
    checkpoint.save(path, config, tok, params, meta={"step": 5})
    buf = io.BytesIO()
    checkpoint.save(buf, config, tok, params)
    for source in (path, buf.getvalue(), io.BytesIO(buf.getvalue())):
        c2, t2, p2, meta = checkpoint.load(source)
        assert c2 == config and t2 == tok
        assert list(p2) == list(params) and all(np.array_equal(p2[k], params[k]) for k in params)
    assert checkpoint.load(path)[3] == {"step": 5}


def test_mismatched_checkpoint_is_refused(tmp_path):
    config = GPTConfig(vocab_size=10, block_size=8, n_layer=2, n_head=2, n_embd=8)
    params = GPT(config).params
    del params["ln_f.g"]
    checkpoint.save(tmp_path / "bad.npz", config, CharTokenizer.from_text("ab"), params)
    with pytest.raises(ValueError, match="missing"):
        checkpoint.load(tmp_path / "bad.npz")
