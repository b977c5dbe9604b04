import numpy as np
import pytest

from gpt_mini.model import GPT, GPTConfig, forward
from gpt_mini.sample import generate, greedy, next_token_probs, sample_batch

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


# ----------------------------------------------------------------------------- sample_batch (rollouts)

BIG = GPTConfig(vocab_size=12, block_size=16, n_layer=2, n_head=2, n_embd=16)
PROMPTS = [[1, 2, 3, 4, 5, 6, 7], [4], [5, 6, 7, 8], [9, 10]]   # different lengths on purpose


def sharp_params(config=BIG, seed=0):
    """GPT-2 init scaled up 10x: peaked next-token distributions, so tokens depend on their context."""
    return {k: v if k.endswith((".g", ".b")) else v * 10 for k, v in GPT(config, seed=seed).params.items()}


def direct_logps(params, config, prompt, completion, temperature):
    """log-softmax(logits / T) of each completion token, from one plain model.forward over prompt + completion."""
    ids = np.array(list(prompt) + list(completion))
    logits, _ = forward(params, ids[None, :-1], config)                       # (1, T-1, V)
    z = logits[0, len(prompt) - 1:].astype(np.float64) / temperature          # (L, V)
    logp = z - z.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    return logp[np.arange(len(completion)), completion]


@pytest.mark.parametrize("top_k", [None, 4])
def test_cached_and_uncached_sample_the_same(top_k):
    params = sharp_params()
    kw = dict(temperature=0.8, top_k=top_k, stop_ids=(0, 11), seed=3)
    a = sample_batch(params, BIG, PROMPTS, 12, kv_cache=True, **kw)
    b = sample_batch(params, BIG, PROMPTS, 12, kv_cache=False, **kw)
    np.testing.assert_array_equal(a.completion_ids, b.completion_ids)
    np.testing.assert_array_equal(a.completion_mask, b.completion_mask)
    np.testing.assert_array_equal(a.lengths, b.lengths)
    np.testing.assert_array_equal(a.stopped, b.stopped)
    np.testing.assert_allclose(a.logps, b.logps, rtol=1e-5, atol=1e-5)
    assert len(set(a.lengths.tolist())) > 1   # rows really did end at different lengths


@pytest.mark.parametrize("kv_cache", [True, False])
@pytest.mark.parametrize("temperature, top_k", [(1.0, None), (0.7, 3), (1.5, None)])
def test_logps_are_log_softmax_at_the_temperature_without_top_k(kv_cache, temperature, top_k):
    params = sharp_params()
    r = sample_batch(params, BIG, PROMPTS, 9, temperature=temperature, top_k=top_k, seed=1, kv_cache=kv_cache)
    for b, prompt in enumerate(PROMPTS):
        n = r.lengths[b]
        want = direct_logps(params, BIG, prompt, r.completion_ids[b, :n], temperature)
        np.testing.assert_allclose(r.logps[b, :n], want, rtol=1e-5, atol=1e-5)
        assert np.all(r.logps[b, n:] == 0)


def test_stop_tokens_end_rows_and_their_masks():
    params = sharp_params()
    stop = (0, 2, 5, 8)
    # the last prompt leaves room for 2 tokens: that row is truncated early and rides along, not stopped
    r = sample_batch(params, BIG, PROMPTS * 4 + [[6] * (BIG.block_size - 2)], 8, stop_ids=stop, seed=0)
    assert r.stopped.any() and not r.stopped.all()
    assert r.lengths[-1] == 2 and not r.stopped[-1] and r.lengths.max() > 2
    for b in range(len(r.prompts)):
        n = r.lengths[b]
        toks = r.completion_ids[b, :n].tolist()
        assert r.completion_mask[b].tolist() == [True] * n + [False] * (r.completion_mask.shape[1] - n)
        assert np.all(r.completion_ids[b, n:] == 0)                          # <|pad|> after the end
        if r.stopped[b]:
            assert toks[-1] in stop and not set(toks[:-1]) & set(stop)      # ends at its first stop token
        else:
            assert not set(toks) & set(stop) and n == min(8, BIG.block_size - len(r.prompts[b]))
    np.testing.assert_array_equal(r.lengths, r.completion_mask.sum(1))


def test_prompt_plus_completion_never_exceeds_block_size():
    params = sharp_params()
    prompts = [[1] * (BIG.block_size - 3), [2] * (BIG.block_size - 1), [3]]
    r = sample_batch(params, BIG, prompts, 10, seed=0)
    assert r.lengths.tolist() == [3, 1, 10] and not r.stopped.any()
    assert r.completion_ids.shape == (3, 10)


@pytest.mark.parametrize("kv_cache", [True, False])
def test_a_row_does_not_depend_on_its_batch_mates(kv_cache):
    params = sharp_params()
    kw = dict(temperature=1.0, stop_ids=(0,), kv_cache=kv_cache)
    batch = sample_batch(params, BIG, PROMPTS, 10, seed=7, **kw)
    children = np.random.SeedSequence(7).spawn(len(PROMPTS))
    for b, prompt in enumerate(PROMPTS):
        alone = sample_batch(params, BIG, [prompt], 10, seed=[children[b]], **kw)
        n = batch.lengths[b]
        assert alone.lengths[0] == n and alone.stopped[0] == batch.stopped[b]
        np.testing.assert_array_equal(alone.completion_ids[0, :n], batch.completion_ids[b, :n])
        np.testing.assert_allclose(alone.logps[0, :n], batch.logps[b, :n], rtol=1e-5, atol=1e-6)
    # and the same prompt twice in one batch gets two different samples
    twice = sample_batch(params, BIG, [PROMPTS[1], PROMPTS[1]], 10, seed=7, **kw)
    assert twice.completion_ids[0].tolist() != twice.completion_ids[1].tolist()


def test_seeding():
    params = sharp_params()
    same = [sample_batch(params, BIG, PROMPTS, 8, seed=s).completion_ids.tolist() for s in (4, 4, 5)]
    assert same[0] == same[1] != same[2]
    rng = np.random.default_rng(4)
    first, second = (sample_batch(params, BIG, PROMPTS, 8, seed=rng).completion_ids.tolist() for _ in range(2))
    assert first != second                       # a Generator advances: the next batch is fresh
    with pytest.raises(ValueError, match="per-row seeds"):
        sample_batch(params, BIG, PROMPTS, 8, seed=[1, 2])


@pytest.mark.parametrize("kv_cache", [True, False])
def test_top_k_1_is_greedy(kv_cache):
    params = sharp_params()
    r = sample_batch(params, BIG, PROMPTS, 8, top_k=1, temperature=2.0, stop_ids=(7,), seed=9, kv_cache=kv_cache)
    for b, prompt in enumerate(PROMPTS):
        want = greedy(params, BIG, prompt, min(8, BIG.block_size - len(prompt)), stop_ids=(7,))
        assert prompt + r.completion_ids[b, :r.lengths[b]].tolist() == want


@pytest.mark.parametrize("top_k", [None, 3])
def test_first_tokens_follow_next_token_probs(top_k):
    """Many rows of one prompt: the first sampled tokens' frequencies match the model's distribution."""
    params = sharp_params()
    n = 4000
    r = sample_batch(params, BIG, [[3, 1, 4]] * n, 1, temperature=1.3, top_k=top_k, seed=0)
    p = next_token_probs(params, BIG, [3, 1, 4], temperature=1.3, top_k=top_k)
    freq = np.bincount(r.completion_ids[:, 0], minlength=BIG.vocab_size) / n
    assert np.all(freq[p == 0] == 0)                                           # truncated tokens never drawn
    assert np.abs(freq - p).max() < 4 * np.sqrt(0.25 / n)                      # 4 sigma at worst


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_temperature_must_be_positive(bad):
    with pytest.raises(ValueError, match="temperature must be > 0"):
        sample_batch(sharp_params(), BIG, PROMPTS, 4, temperature=bad)


def test_bad_prompts_and_arguments_raise():
    params = sharp_params()
    with pytest.raises(ValueError, match="exceeds block_size"):
        sample_batch(params, BIG, [[1], [2] * (BIG.block_size + 1)], 4)
    with pytest.raises(ValueError, match="room for one new token"):
        sample_batch(params, BIG, [[2] * BIG.block_size], 4)
    with pytest.raises(ValueError, match="1 to block_size - 1"):
        sample_batch(params, BIG, [[1], []], 4)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        sample_batch(params, BIG, [[1, BIG.vocab_size]], 4)
    with pytest.raises(ValueError, match="top_k"):
        sample_batch(params, BIG, PROMPTS, 4, top_k=0)
    with pytest.raises(ValueError, match="no prompts"):
        sample_batch(params, BIG, [], 4)
