"""Sampling from the model: temperature, top-k, and a seeded generator so every sample is reproducible."""

import numpy as np

from .model import forward, softmax


def next_token_probs(params, config, ids, temperature=1.0, top_k=None):
    """p(next token | ids) as a (V,) array, after temperature and top-k."""
    ids = np.asarray(ids, dtype=np.int64)[-config.block_size:]   # the model sees at most block_size tokens
    logits, _ = forward(params, ids[None, :], config)
    logits = logits[0, -1].astype(np.float64)                    # (V,)
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    logits = logits / temperature
    if top_k is not None and top_k < logits.size:
        kth = np.sort(logits)[-top_k]
        logits = np.where(logits < kth, -np.inf, logits)
    return softmax(logits)


def generate(params, config, ids, max_new_tokens, temperature=1.0, top_k=None, seed=0, stop_ids=()):
    """Append up to max_new_tokens sampled tokens to ids; stops early on any of stop_ids."""
    rng = np.random.default_rng(seed)
    ids = list(ids)
    for _ in range(max_new_tokens):
        p = next_token_probs(params, config, ids, temperature, top_k)
        nxt = int(rng.choice(p.size, p=p))
        ids.append(nxt)
        if nxt in stop_ids:
            break
    return ids


def greedy(params, config, ids, max_new_tokens, stop_ids=()):
    """Always take the most likely next token: the model's single best guess, for evaluation."""
    ids = list(ids)
    for _ in range(max_new_tokens):
        p = next_token_probs(params, config, ids)
        nxt = int(np.argmax(p))
        ids.append(nxt)
        if nxt in stop_ids:
            break
    return ids


def complete(params, config, tokenizer, prompt, max_new=12, stop=".", start="\n"):
    """Greedy continuation of a text prompt, up to `stop` or the end of the document (`start` opens one).

    The prompt is read after `start`, so the model sees it as the beginning of a document, as in training."""
    ids = tokenizer.encode(start + prompt)
    out = tokenizer.decode(greedy(params, config, ids, max_new, stop_ids=tokenizer.encode(stop + start)))
    return out[len(start + prompt):]
