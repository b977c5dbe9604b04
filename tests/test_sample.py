import numpy as np
import pytest

from gpt_mini.model import GPT, GPTConfig
from gpt_mini.sample import generate, greedy, next_token_probs

CONFIG = GPTConfig(vocab_size=12, block_size=8, n_layer=1, n_head=2, n_embd=8)


def test_probs_sum_to_one_and_top_k_keeps_k():
    params = GPT(CONFIG, seed=0).params
    p = next_token_probs(params, CONFIG, [1, 2, 3], top_k=3)
    assert p.sum() == pytest.approx(1.0) and np.count_nonzero(p) == 3


def test_low_temperature_approaches_greedy():
    params = GPT(CONFIG, seed=0).params
    p = next_token_probs(params, CONFIG, [1, 2, 3], temperature=1e-3)
    assert p.max() > 0.99
    assert greedy(params, CONFIG, [1, 2, 3], 1)[-1] == int(np.argmax(p))


def test_sampling_is_seeded_and_crops_to_block_size():
    params = GPT(CONFIG, seed=0).params
    a = generate(params, CONFIG, [1], 20, seed=5)
    assert a == generate(params, CONFIG, [1], 20, seed=5)
    assert a != generate(params, CONFIG, [1], 20, seed=6)
    assert len(a) == 21   # longer than block_size: the context window slides


def test_stop_token_ends_generation():
    params = GPT(CONFIG, seed=0).params
    out = greedy(params, CONFIG, [1], 10, stop_ids=range(12))
    assert len(out) == 2
