"""Sampling from the model: temperature, top-k, and a seeded generator so every sample is reproducible."""

import math
from dataclasses import dataclass

import numpy as np

from .model import check_idx, forward, layernorm_forward, linear_forward, logprob_forward, mlp_forward, softmax


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


# ----------------------------------------------------------------------------- rollouts: B completions at once

@dataclass
class Rollouts:
    """B sampled completions, padded to the longest one: the arrays a GRPO loss reads (TRL's names)."""
    prompts: list               # B lists of prompt token ids, as given
    completion_ids: np.ndarray  # (B, N) int64, pad_id after each row's end
    completion_mask: np.ndarray  # (B, N) bool, True on a row's completion tokens (its stop token included)
    logps: np.ndarray           # (B, N) float64 log pi(token | prefix) at the temperature, 0 where masked
    lengths: np.ndarray         # (B,) int64 completion lengths (= completion_mask.sum(1))
    stopped: np.ndarray         # (B,) bool, True if the row ended on one of stop_ids

    def sequences(self, pad_id=0):
        """Each row's prompt + completion, left-aligned and right-padded, as a loss reads them: input_ids (B, T)
        and completion_mask (B, T), True on the completion's tokens (a loss shifts both by one for targets)."""
        T = max(len(p) + int(n) for p, n in zip(self.prompts, self.lengths))
        input_ids = np.full((len(self.prompts), T), pad_id, dtype=np.int64)   # (B, T)
        completion_mask = np.zeros((len(self.prompts), T), dtype=bool)        # (B, T)
        for b, (p, n) in enumerate(zip(self.prompts, self.lengths)):
            input_ids[b, :len(p)], input_ids[b, len(p):len(p) + n] = p, self.completion_ids[b, :n]
            completion_mask[b, len(p):len(p) + n] = True
        return input_ids, completion_mask


def new_kv_cache(config, B, dtype=np.float32):
    """Per layer, room for the keys and values of B rows of block_size tokens: (K, V), each (B, nh, block_size, hs)."""
    shape = (B, config.n_head, config.block_size, config.n_embd // config.n_head)
    return [(np.zeros(shape, dtype), np.zeros(shape, dtype)) for _ in range(config.n_layer)]


def forward_cached(params, config, idx, pos, cache):
    """Logits (B, T, V) for T new tokens per row, row b's first at position pos[b]; inference only, no backward.

    The same maths as model.forward, but each layer first writes the new tokens' keys and values into `cache` at
    their positions, then lets each new token attend to every cached position up to its own: positions before
    pos[b] hold what earlier calls wrote, so a step of decoding costs one token's work, not the whole prefix's.
    """
    B, T = idx.shape
    nh, hs = config.n_head, config.n_embd // config.n_head
    slots = pos[:, None] + np.arange(T)                                  # (B, T) each new token's position
    rows = np.arange(B)[:, None]                                         # (B, 1) pairs with slots: one write per token
    S = int(slots.max()) + 1                                             # positions any new token may see
    # A position after the token's own is its future, or slots a shorter row has not reached (stale until written).
    hidden = np.arange(S) > slots[:, None, :, None]                      # (B, 1, T, S)
    x = params["wte"][idx] + params["wpe"][slots]                        # (B, T, C) each row at its own positions
    for i, (K, V) in enumerate(cache):
        p = f"h.{i}."
        a_in, _ = layernorm_forward(x, params[p + "ln_1.g"], params[p + "ln_1.b"])        # (B, T, C)
        qkv, _ = linear_forward(a_in, params[p + "attn.c_attn.w"], params[p + "attn.c_attn.b"])  # (B, T, 3C)
        q, k, v = (t.reshape(B, T, nh, hs) for t in np.split(qkv, 3, axis=-1))         # 3 x (B, T, nh, hs)
        K[rows, :, slots] = k                                            # (B, nh, block, hs) written at (b, slot)
        V[rows, :, slots] = v                                            # (B, nh, block, hs)
        scores = q.transpose(0, 2, 1, 3) @ K[:, :, :S].transpose(0, 1, 3, 2)  # (B, nh, T, S)
        scores *= 1.0 / math.sqrt(hs)
        np.copyto(scores, -np.inf, where=hidden)                         # (B, nh, T, S)
        att = softmax(scores, axis=-1)                                   # (B, nh, T, S)
        y = (att @ V[:, :, :S]).transpose(0, 2, 1, 3).reshape(B, T, nh * hs)  # (B, T, C) heads side by side
        a, _ = linear_forward(y, params[p + "attn.c_proj.w"], params[p + "attn.c_proj.b"])  # (B, T, C)
        x = x + a                                                        # (B, T, C) residual
        m, _ = mlp_forward(x, params, p)                                 # (B, T, C) as in model.block_forward
        x = x + m                                                        # (B, T, C) residual
    xf, _ = layernorm_forward(x, params["ln_f.g"], params["ln_f.b"])     # (B, T, C)
    return xf @ params["wte"].T                                          # (B, T, V) tied read-out


def row_generators(seed, B):
    """One generator per row, so that a row's samples never depend on which rows share its batch.

    An int (or a Generator) is split into B independent children: row b's child depends only on the seed and b.
    A sequence of B seeds / SeedSequences / Generators gives each row its own (to replay one row of a batch alone,
    pass `[np.random.SeedSequence(seed).spawn(B)[b]]`).
    """
    if isinstance(seed, np.random.Generator):
        return seed.spawn(B)                    # advances the parent: the next call draws fresh rollouts
    if isinstance(seed, (int, np.integer)):
        return [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(B)]
    rngs = [s if isinstance(s, np.random.Generator) else np.random.default_rng(s) for s in seed]
    if len(rngs) != B:
        raise ValueError(f"got {len(rngs)} per-row seeds for {B} prompts")
    return rngs


def sample_batch(params, config, prompts, max_new_tokens, temperature=1.0, top_k=None, stop_ids=(), seed=0,
                 kv_cache=True, pad_id=0):
    """Sample a completion for each of B prompts at once; returns Rollouts.

    prompts: B lists of token ids, of any lengths from 1 to block_size - 1. Each row sits left-aligned at
      positions 0.. (its own positions, as when sampled alone: GPT-2's position embeddings are absolute, so
      left-padding would shift them) and is right-padded with pad_id. The causal mask already keeps every token
      from seeing the padding to its right; each row reads its next-token logits at its own last position.
    A row ends at its first token in stop_ids (kept in the completion and the mask, so a loss teaches stopping;
      stopped=True), after max_new_tokens, or when prompt + completion reach block_size tokens: the sequence never
      exceeds block_size and the window never slides (both of these: stopped=False, truncated). A finished row
      stops growing; it rides along in the batch until the last row ends, and its later columns are masked.
    temperature > 0 divides the logits; top_k keeps the k largest (ties at the k-th kept) before sampling.
    logps: log-softmax(logits / temperature) at the sampled token, over the whole vocabulary; top-k truncation is
      NOT included. That is TRL's GRPO convention (`_get_per_token_logps`: `logits / self.temperature`, then
      `selective_log_softmax`, with no top-k), so these equal the log-probs a training loss recomputes from the
      logits and the first ratio is exactly 1. With top_k set, the token was drawn from the renormalised top-k
      distribution, whose log-prob is logps + log(1 / mass of the kept tokens) >= logps. TRL's GRPO samples with
      top_k=None by default (PR #3494), where the two agree.
    seed: an int, a Generator, or one seed per row (see row_generators); each row draws one uniform per token
      from its own generator, so a row's tokens do not depend on its batch-mates (its log-probs too, up to float
      rounding: a longer padded batch changes the summation order of BLAS and NumPy reductions).
    kv_cache: True decodes one token per step against cached keys and values (forward_cached); False reruns
      model.forward over every row's whole prefix each step. Same tokens, log-probs equal to float32 rounding;
      the cache is the default because it is faster, natively and in Pyodide (bench/sample.py).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature} (for the most likely token use top_k=1)")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1 or None, got {top_k}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    prompts = [check_idx(p, config)[0].tolist() for p in prompts]        # ints in the vocabulary, <= block_size
    B, Tmax = len(prompts), config.block_size
    P = np.array([len(p) for p in prompts], dtype=np.int64)              # (B,) prompt lengths
    if B == 0:
        raise ValueError("no prompts")
    if P.min() < 1 or P.max() >= Tmax:
        b = int(np.argmin(P)) if P.min() < 1 else int(np.argmax(P))
        raise ValueError(f"prompt {b} has {P[b]} tokens: a prompt needs 1 to block_size - 1 = {Tmax - 1} tokens "
                         f"(at least one to condition on, and room for one new token)")
    budget = np.minimum(max_new_tokens, Tmax - P)                        # (B,) tokens each row may add
    seq = np.full((B, Tmax), pad_id, dtype=np.int64)                     # (B, block) prompt + completion, right-padded
    for b, p in enumerate(prompts):
        seq[b, :len(p)] = p
    N = int(budget.max())
    completion_ids = np.full((B, N), pad_id, dtype=np.int64)             # (B, N)
    logps = np.zeros((B, N))                                             # (B, N) float64
    lens = P.copy()                                                      # (B,) current sequence lengths
    stopped = np.zeros(B, dtype=bool)                                    # (B,)
    done = budget == 0                                                   # (B,)
    rngs = row_generators(seed, B)
    stop = np.array(sorted(set(stop_ids)), dtype=np.int64)               # (n_stop,)
    rows = np.arange(B)                                                  # (B,)
    cache = new_kv_cache(config, B, params["wte"].dtype) if kv_cache else None
    for t in range(N):
        if done.all():
            break
        if not kv_cache:                                                 # the whole prefix, every step
            logits, _ = forward(params, seq[:, :lens.max()], config)     # (B, T, V)
            logits = logits[rows, lens - 1]                              # (B, V) each row at its last token
        elif t == 0:                                                     # prefill: every prompt in one call
            logits = forward_cached(params, config, seq[:, :P.max()], np.zeros(B, np.int64), cache)  # (B, T, V)
            logits = logits[rows, P - 1]                                 # (B, V)
        else:                                                            # one token per row: its last one
            # a finished row recomputes its last token; the key and value it rewrites are the same
            logits = forward_cached(params, config, seq[rows, lens - 1][:, None], lens - 1, cache)[:, 0]  # (B, V)
        z = logits.astype(np.float64) / temperature                      # (B, V) the policy at this temperature
        drawn = z                                                        # (B, V) the logits tokens are drawn from
        if top_k is not None and top_k < z.shape[1]:
            kth = np.sort(z, axis=-1)[:, -top_k, None]                   # (B, 1)
            drawn = np.where(z < kth, -np.inf, z)                        # (B, V) only the top k can be drawn
        cdf = np.cumsum(softmax(drawn), axis=-1)                         # (B, V)
        u = np.array([0.0 if d else rng.random() for rng, d in zip(rngs, done)])  # (B,) finished rows draw nothing
        # inverse CDF: the first token whose cumulative probability passes u (as rng.choice does)
        tok = (cdf[:, :-1] <= (u * cdf[:, -1])[:, None]).sum(axis=-1)   # (B,)
        logp, _ = logprob_forward(z[:, None], tok[:, None])              # (B, 1) log pi(tok) over the whole vocabulary
        live = ~done                                                     # (B,)
        completion_ids[live, t] = tok[live]
        logps[live, t] = logp[live, 0]
        seq[rows[live], lens[live]] = tok[live]
        lens[live] += 1
        stopped |= live & np.isin(tok, stop)
        done |= stopped | (lens - P >= budget)
    lengths = lens - P                                                   # (B,)
    N = int(lengths.max())
    mask = np.arange(N) < lengths[:, None]                               # (B, N)
    return Rollouts(prompts, completion_ids[:, :N], mask, logps[:, :N], lengths, stopped)
