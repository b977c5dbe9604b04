"""Batches for the training loop, and the baseline a loss is read against.

Every stage's batch is the same triple, `(idx, targets, mask)`, each (B, T): the targets are the inputs shifted one
step left, and the mask says which positions count in the loss. Pretraining cuts windows from one long token
stream and counts every position; from SFT on, each row is one example, padded, with its own mask.
"""

import numpy as np


def get_batch(data, block_size, batch_size, rng):
    """Random windows of the token stream: inputs x and the same windows shifted by one as targets."""
    starts = rng.integers(0, len(data) - block_size - 1, batch_size)
    idx = np.stack([data[s:s + block_size] for s in starts])              # (B, T)
    targets = np.stack([data[s + 1:s + block_size + 1] for s in starts])  # (B, T)
    return idx, targets, None   # no mask: pretraining learns from every position


def pad_batch(examples, pad_id, length=None):
    """One row per example: `examples` are (ids, weights) pairs, weights[t] saying whether token t is learned.

    Row b scores token t+1 from tokens 0..t, so the mask is the weights shifted with the targets. Rows are padded
    on the right to `length` (default: the longest example minus one); padding is never scored."""
    length = length or max(len(ids) for ids, _ in examples) - 1
    B = len(examples)
    idx = np.full((B, length), pad_id, np.int64)                          # (B, T)
    targets = np.full((B, length), pad_id, np.int64)                      # (B, T)
    mask = np.zeros((B, length), bool)                                    # (B, T)
    for b, (ids, weights) in enumerate(examples):
        if len(ids) - 1 > length:
            raise ValueError(f"example {b} has {len(ids)} tokens; the batch holds at most {length + 1}")
        n = len(ids) - 1
        idx[b, :n] = ids[:-1]
        targets[b, :n] = ids[1:]
        mask[b, :n] = np.asarray(weights[1:], bool)
    return idx, targets, mask


def unigram_loss(train, val, vocab_size):
    """Cross-entropy of the best model that ignores context: the bar "learning anything" must clear."""
    counts = np.bincount(np.asarray(train, np.intp), minlength=vocab_size) + 1.0   # intp: wasm32 refuses int64 here
    logp = np.log(counts / counts.sum())
    return float(-logp[np.asarray(val, np.intp)].mean())
