import math

import numpy as np
import pytest

from conftest import require
from gpt_mini.model import GPT, GPTConfig
from gpt_mini.optim import AdamWConfig, adamw_init, adamw_step, clip_grad_norm, global_norm, lr_at


def test_adamw_matches_torch_over_several_steps():
    torch = require("torch")
    config = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)
    params = GPT(config, seed=0, dtype=np.float64).params
    hp = AdamWConfig(lr=3e-3, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1)
    tparams = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    # our decay rule (matrices only) expressed as torch param groups
    groups = [{"params": [p for k, p in tparams.items() if p.ndim >= 2], "weight_decay": hp.weight_decay},
              {"params": [p for k, p in tparams.items() if p.ndim < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=hp.lr, betas=(hp.beta1, hp.beta2), eps=hp.eps)
    state = adamw_init(params)
    rng = np.random.default_rng(0)
    for step in range(6):
        grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        lr = lr_at(step, hp.lr, total_steps=6, warmup_steps=2)
        adamw_step(params, grads, state, lr, hp)
        for group in opt.param_groups:
            group["lr"] = lr
        for k, p in tparams.items():
            p.grad = torch.tensor(grads[k])
        opt.step()
    for k in params:
        np.testing.assert_allclose(params[k], tparams[k].detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=k)


def test_clip_grad_norm_matches_torch():
    torch = require("torch")
    rng = np.random.default_rng(1)
    grads = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    tens = [torch.tensor(g.copy(), requires_grad=True) for g in grads.values()]
    for t, g in zip(tens, grads.values()):
        t.grad = torch.tensor(g.copy())
    ref_norm = torch.nn.utils.clip_grad_norm_(tens, max_norm=1.0)
    norm = clip_grad_norm(grads, 1.0)
    assert norm == pytest.approx(ref_norm.item(), rel=1e-12)
    for t, g in zip(tens, grads.values()):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12)
    assert global_norm(grads) == pytest.approx(1.0, rel=1e-5)


def test_clip_leaves_small_gradients_alone():
    grads = {"a": np.full(4, 0.1)}
    clip_grad_norm(grads, 1.0)
    assert np.all(grads["a"] == 0.1)


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    lrs = [lr_at(s, 1.0, total_steps=100, warmup_steps=10, min_lr_ratio=0.1) for s in range(120)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:100], lrs[11:100]))
    assert lrs[55] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lrs[100] == lrs[119] == pytest.approx(0.1)
