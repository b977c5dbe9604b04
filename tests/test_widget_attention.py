"""widgets/attention.py: the pretrained model's attention weights, straight from the real forward's trace."""
import json
from pathlib import Path

import numpy as np
import pytest

from gpt_mini import checkpoint, model, world
from widgets import attention

ROOT = Path(__file__).resolve().parent.parent
CKPT = str(ROOT / attention.CHECKPOINT)


def test_weights_are_the_forwards_own_softmax_for_every_layer_and_head():
    config, _, params, _ = checkpoint.load(CKPT)
    prompt = attention.DEFAULT_KNOBS["prompt"]
    r = attention.attend(CKPT, prompt)
    assert r["ok"] and len(r["weights"]) == config.n_layer and len(r["weights"][0]) == config.n_head
    ids = world.tokenizer().encode("\n" + prompt)
    assert len(r["tokens"]) == len(ids) and r["tokens"][0] == "↵"
    seen = {}
    model.forward(params, np.array(ids)[None], config, trace=lambda n, a: seen.__setitem__(n, a))
    for layer in range(config.n_layer):
        want = seen[f"h.{layer}.attn.softmax"][0]
        np.testing.assert_allclose(r["weights"][layer], want, atol=0.5 * 10 ** -attention.DECIMALS)
    w = np.array(r["weights"])                                        # (L, nh, T, T)
    assert np.allclose(w.sum(-1), 1, atol=1e-3) and np.all(np.triu(w, 1) == 0)   # rows sum to 1; causal
    assert json.loads(json.dumps(r)) == r


def test_patterns_measure_the_weights_they_name():
    r = attention.attend(CKPT, "the dog sees the cat.")
    w = np.array(r["weights"][0][0])
    T = len(w)
    p = r["patterns"][0][0]
    assert p["previous"] == pytest.approx(np.mean([w[t, t - 1] for t in range(1, T)]), abs=1e-3)
    assert p["self"] == pytest.approx(np.mean([w[t, t] for t in range(1, T)]), abs=1e-3)
    assert p["first"] == pytest.approx(np.mean(w[1:, 0]), abs=1e-3)


def test_long_prompts_keep_the_last_block_size_characters_and_bad_ones_are_explained():
    r = attention.attend(CKPT, "ada lives in paris. " * 5)
    assert r["ok"] and len(r["tokens"]) == r["model"]["block_size"] and r["truncated"] > 0
    bad = attention.attend(CKPT, "Ada")
    assert not bad["ok"] and "lowercase" in bad["problem"]["hint"]
    with pytest.raises(ValueError, match="npz"):
        attention.attend("results/00_pretrain.json", "ada")


def test_info_and_defaults():
    info = attention.info()
    assert info["defaults"] == attention.DEFAULT_KNOBS and attention.DEFAULT_KNOBS["prompt"] in info["prompts"]
    assert (ROOT / info["checkpoint"]).is_file() and info["path"].endswith(info["checkpoint"])
    for prompt in info["prompts"]:
        assert attention.attend(CKPT, prompt)["ok"]


def test_training_without_the_mask_reads_the_answer():
    """The breaking configuration, run as the widget runs it: with the mask off the loss as trained falls below
    the entropy floor no honest model can beat, while the same weights read honestly (mask on) get worse than a
    uniform guess; with the mask on the two stay together. The mask is restored after every call."""
    info = attention.leak_info()
    out = {}
    for mask in ("off", "on"):
        s = attention.leak_start(mask, info["steps"])["session"]
        while (r := attention.leak_step(s, info["max_chunk"]))["status"] == "training":
            pass
        out[mask] = r
        attention.leak_close(s)
        assert model.causal_mask(3).sum() == 3
    assert out["off"]["as_trained_loss"] < info["floor"] < out["on"]["honest_loss"]
    assert out["off"]["honest_loss"] > info["uniform"]
    assert abs(out["on"]["honest_loss"] - out["on"]["as_trained_loss"]) < 1e-9
