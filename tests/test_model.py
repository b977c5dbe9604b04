import numpy as np
import pytest

from conftest import assert_grads_match_fd, require
from gpt_mini.model import (GPT, GPTConfig, forward, from_hf_state_dict, init_params, param_shapes,
                            to_hf_state_dict)

TINY = GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=8)


def perturbed_model(config=TINY, seed=0):
    """A float64 model whose biases and gains are not at their init values, so their grads are non-trivial."""
    model = GPT(config, seed=seed, dtype=np.float64)
    rng = np.random.default_rng(seed + 1)
    for k, v in model.params.items():
        model.params[k] = v + 0.1 * rng.standard_normal(v.shape)
    return model


def batch(config=TINY, B=3, T=7, seed=0):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, config.vocab_size, (B, T))
    targets = rng.integers(0, config.vocab_size, (B, T))
    mask = rng.random((B, T)) > 0.3
    mask[0, 0] = True
    return idx, targets, mask


def test_param_shapes_and_init_statistics():
    config = GPTConfig(vocab_size=50, block_size=32, n_layer=4, n_head=4, n_embd=64)
    model = GPT(config, seed=0)
    assert {k: v.shape for k, v in model.params.items()} == param_shapes(config)
    assert all(v.dtype == np.float32 for v in model.params.values())
    assert np.all(model.params["h.0.ln_1.g"] == 1) and np.all(model.params["h.0.attn.c_attn.b"] == 0)
    assert model.params["wte"].std() == pytest.approx(0.02, rel=0.05)
    assert model.params["h.0.mlp.c_proj.w"].std() == pytest.approx(0.02 / np.sqrt(8), rel=0.05)
    assert model.params["h.0.attn.c_attn.w"].std() == pytest.approx(0.02, rel=0.05)


def test_same_seed_same_params_different_seed_different():
    a, b, c = GPT(TINY, seed=3), GPT(TINY, seed=3), GPT(TINY, seed=4)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert not np.array_equal(a.params["wte"], c.params["wte"])


def test_float64_params_give_float64_everything():
    model = perturbed_model()
    idx, targets, mask = batch()
    logits, _ = model.forward(idx)
    loss, grads = model.loss_and_grads(idx, targets, mask)
    assert logits.dtype == np.float64
    assert all(g.dtype == np.float64 for g in grads.values())


def test_every_gradient_matches_finite_differences():
    model = perturbed_model()
    idx, targets, mask = batch()
    _, grads = model.loss_and_grads(idx, targets, mask)
    assert list(grads) == list(model.params)
    h = 1e-6
    for name, p in model.params.items():
        numeric = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + h
            plus, _ = model.loss_and_grads(idx, targets, mask)
            p[i] = old - h
            minus, _ = model.loss_and_grads(idx, targets, mask)
            p[i] = old
            numeric[i] = (plus - minus) / (2 * h)
        scale = np.abs(numeric).max() + 1e-12
        assert np.abs(numeric - grads[name]).max() / scale < 1e-6, name


def test_masked_positions_do_not_move_the_loss():
    model = perturbed_model()
    idx, targets, mask = batch()
    loss, _ = model.loss_and_grads(idx, targets, mask)
    other = targets.copy()
    other[~mask] = (other[~mask] + 1) % TINY.vocab_size
    assert model.loss_and_grads(idx, other, mask)[0] == pytest.approx(loss, abs=1e-12)


def test_causal_position_t_never_sees_the_future():
    model = perturbed_model()
    idx, _, _ = batch()
    logits, _ = model.forward(idx)
    changed = idx.copy()
    changed[:, 4:] = (changed[:, 4:] + 1) % TINY.vocab_size
    logits2, _ = model.forward(changed)
    np.testing.assert_allclose(logits[:, :4], logits2[:, :4], atol=1e-12)
    assert not np.allclose(logits[:, 4:], logits2[:, 4:])


def test_trace_names_every_step_with_its_shape():
    model = GPT(TINY, seed=0)
    seen = {}
    model.forward(np.zeros((2, 5), dtype=int), trace=lambda name, a: seen.setdefault(name, a.shape))
    C, nh, hs = 8, 2, 4
    assert seen["embed"] == (2, 5, C)
    assert seen["h.1.attn.c_attn"] == (2, 5, 3 * C)
    assert seen["h.0.attn.q"] == (2, nh, 5, hs)
    assert seen["h.0.attn.scores"] == (2, nh, 5, 5)
    assert seen["h.0.attn.mask"] == (5, 5)
    assert seen["h.0.attn.merge"] == (2, 5, C)
    assert seen["h.0.mlp.c_fc"] == (2, 5, 4 * C)
    assert seen["logits"] == (2, 5, 13)


@pytest.mark.parametrize("bad, message", [
    (lambda: GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=3, n_embd=8), "divisible by n_head"),
    (lambda: GPTConfig(vocab_size=0, block_size=8, n_layer=1, n_head=2, n_embd=8), "vocab_size"),
    (lambda: GPT(TINY).forward(np.array([[0, 13]])), "outside the vocabulary"),
    (lambda: GPT(TINY).forward(np.array([[-1, 2]])), "outside the vocabulary"),
    (lambda: GPT(TINY).forward(np.zeros((1, 9), dtype=int)), "exceeds block_size"),
    (lambda: GPT(TINY).forward(np.zeros((1, 3), dtype=float)), "integer"),
    (lambda: GPT(TINY).loss_and_grads(np.zeros((1, 3), int), np.zeros((1, 3), int), np.zeros((1, 3), bool)),
     "selects no position"),
    (lambda: GPT(TINY).loss_and_grads(np.zeros((1, 3), int), np.zeros((1, 4), int)), "targets shape"),
])
def test_bad_input_is_a_clear_value_error(bad, message):
    with pytest.raises(ValueError, match=message):
        bad()


def test_hf_state_dict_round_trip():
    params = GPT(TINY, seed=0).params
    sd = to_hf_state_dict(params)
    assert sd["lm_head.weight"] is params["wte"]
    back = from_hf_state_dict(sd)
    assert list(back) == list(params) and all(np.array_equal(back[k], params[k]) for k in params)


# ----------------------------------------------------------------------------- parity with Hugging Face

def hf_model(config, params):
    torch = require("torch")
    transformers = require("transformers")
    hf_config = transformers.GPT2Config(
        vocab_size=config.vocab_size, n_positions=config.block_size, n_embd=config.n_embd,
        n_layer=config.n_layer, n_head=config.n_head, activation_function="gelu_new",
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5,
        bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(hf_config).double().eval()
    state = {k: torch.tensor(v) for k, v in to_hf_state_dict(params).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(".attn.bias" in k or ".attn.masked_bias" in k for k in missing), missing
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()  # still tied
    return torch, model


@pytest.mark.parametrize("config", [TINY, GPTConfig(vocab_size=40, block_size=16, n_layer=3, n_head=4, n_embd=32)])
def test_logits_loss_and_every_gradient_match_transformers(config):
    model = perturbed_model(config)
    idx, targets, mask = batch(config, B=2, T=config.block_size - 1)
    torch, hf = hf_model(config, model.params)

    logits, _ = model.forward(idx)
    loss, grads = model.loss_and_grads(idx, targets, mask)

    out = hf(torch.tensor(idx))
    ref_logits = out.logits
    # HF's built-in loss shifts labels itself and has no mask: compute the same masked mean explicitly
    nll = torch.nn.functional.cross_entropy(ref_logits.reshape(-1, config.vocab_size),
                                            torch.tensor(targets).reshape(-1), reduction="none")
    m = torch.tensor(mask, dtype=torch.float64).reshape(-1)
    ref_loss = (nll * m).sum() / m.sum()
    ref_loss.backward()

    np.testing.assert_allclose(logits, ref_logits.detach().numpy(), rtol=1e-6, atol=1e-10)
    assert loss == pytest.approx(ref_loss.item(), rel=1e-6)
    ref_grads = from_hf_state_dict({k: p.grad for k, p in hf.named_parameters()})
    for name in model.params:
        ref = ref_grads[name]
        np.testing.assert_allclose(grads[name], ref, rtol=1e-6, atol=1e-6 * np.abs(ref).max(), err_msg=name)


def test_exported_float32_model_gives_same_logits_in_transformers():
    config = GPTConfig(vocab_size=30, block_size=16, n_layer=2, n_head=4, n_embd=32)
    model = GPT(config, seed=7)
    idx, _, _ = batch(config, B=2, T=16)
    torch, hf = hf_model(config, model.params)
    hf = hf.float()
    ref = hf(torch.tensor(idx)).logits.detach().numpy()
    np.testing.assert_allclose(model.forward(idx)[0], ref, rtol=1e-4, atol=1e-5)


def test_from_hf_state_dict_reads_a_real_transformers_model():
    torch = require("torch")
    transformers = require("transformers")
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=20, n_positions=8, n_embd=16, n_layer=2, n_head=2, activation_function="gelu_new",
        bos_token_id=0, eos_token_id=0)).eval()
    params = from_hf_state_dict(hf.state_dict())
    config = GPTConfig(vocab_size=20, block_size=8, n_layer=2, n_head=2, n_embd=16)
    idx = np.arange(8)[None] % 20
    np.testing.assert_allclose(forward(params, idx, config)[0], hf(torch.tensor(idx)).logits.detach().numpy(),
                               rtol=1e-4, atol=1e-5)


def test_untied_head_and_bool_config_are_refused():
    sd = {k: v.copy() for k, v in to_hf_state_dict(GPT(TINY).params).items()}
    sd["lm_head.weight"] = sd["lm_head.weight"] + 1
    with pytest.raises(ValueError, match="ties them"):
        from_hf_state_dict(sd)
    with pytest.raises(ValueError, match="n_layer"):
        GPTConfig(vocab_size=10, block_size=8, n_layer=True, n_head=2, n_embd=8)


def test_float32_stays_float32_through_every_op():
    """A NumPy float64 scalar anywhere in the graph would silently upcast (and slow) everything."""
    model = GPT(TINY, seed=0)
    dtypes = {}
    idx, targets, mask = batch()
    model.forward(idx, trace=lambda name, a: dtypes.setdefault(name, a.dtype))
    assert {n: d for n, d in dtypes.items() if d not in (np.float32, np.bool_)} == {}
    _, grads = model.loss_and_grads(idx, targets, mask)
    assert all(g.dtype == np.float32 for g in grads.values())


# ----------------------------------------------------------------------------- the log-prob op every loss goes through

def test_logprob_forward_matches_torch_log_softmax_and_its_backward_matches_autograd():
    torch = require("torch")
    from gpt_mini.model import logprob_backward, logprob_forward
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3, 5, 11)) * 4
    targets = rng.integers(0, 11, (3, 5))
    dlogp = rng.standard_normal((3, 5))              # an arbitrary upstream gradient, as DPO or GRPO would send
    logp, cache = logprob_forward(logits, targets)
    t = torch.tensor(logits, requires_grad=True)
    ref = torch.log_softmax(t, dim=-1).gather(-1, torch.tensor(targets)[..., None])[..., 0]
    np.testing.assert_allclose(logp, ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    ref.backward(torch.tensor(dlogp))
    np.testing.assert_allclose(logprob_backward(dlogp, cache), t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_logprob_is_stable_for_huge_logits():
    from gpt_mini.model import logprob_forward
    logits = np.array([[[1000.0, 0.0, -1000.0]]])
    logp, _ = logprob_forward(logits, np.array([[1]]))
    assert logp[0, 0] == pytest.approx(-1000.0)


def test_any_loss_of_token_logps_gets_its_gradient_through_the_whole_model():
    """A loss that is not cross-entropy (a weighted sum of exp(logp), as a GRPO ratio is) by finite differences."""
    from gpt_mini.model import token_logps, token_logps_backward
    model = perturbed_model()
    idx, targets, mask = batch()
    w = np.random.default_rng(5).standard_normal(idx.shape) * mask

    def loss(params):
        logp, cache = token_logps(params, idx, targets, TINY)
        return float((w * np.exp(logp)).sum()), w * np.exp(logp), cache
    _, dlogp, cache = loss(model.params)
    grads = token_logps_backward(dlogp, cache, model.params, TINY)
    assert_grads_match_fd(lambda p: loss(p)[0], model.params, grads, ("wte", "h.1.attn.c_attn.w", "ln_f.b"),
                          per_param=4, seed=1)


def test_nll_is_one_mean_over_the_batchs_tokens_not_a_mean_of_sequence_means():
    from gpt_mini.model import nll_backward, nll_forward
    logp = np.array([[-1.0, -1.0, -1.0, -1.0], [-5.0, 0.0, 0.0, 0.0]])
    mask = np.array([[1, 1, 1, 1], [1, 0, 0, 0]], bool)
    loss, cache = nll_forward(logp, mask)
    assert loss == pytest.approx(9 / 5)              # a mean of per-row means would be (1 + 5) / 2 = 3
    np.testing.assert_array_equal(nll_backward(cache), -(mask / 5))
    with pytest.raises(ValueError, match="selects no position"):
        nll_forward(logp, np.zeros_like(mask))
