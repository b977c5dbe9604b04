"""Benchmark: training-step throughput of gpt_mini (NumPy) vs the same GPT-2 in PyTorch eager, CPU, float32.

Both sides run in this one process, same config, batch, dtype and thread count; each training step is
forward + loss + backward + AdamW update. Prints tokens/s for each and the ratio gpt_mini / torch.

    python bench/train_step.py [--threads N] [--steps 20]
"""

import argparse
import os
import sys
import time

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--threads", type=int, default=os.cpu_count())
parser.add_argument("--steps", type=int, default=20)
parser.add_argument("--no-heap", action="store_true", help="leave glibc malloc at its defaults")
parser.add_argument("--repeats", type=int, default=3, help="best-of timing runs per side")
args = parser.parse_args()
# thread counts must be fixed before NumPy's BLAS is loaded
os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from gpt_mini.model import GPT, GPTConfig, to_hf_state_dict  # noqa: E402
from gpt_mini.train import TrainConfig, TrainState, train_step, use_heap_for_temporaries  # noqa: E402

torch.set_num_threads(args.threads)
HEAP = False if args.no_heap else use_heap_for_temporaries()

# (n_embd, n_layer, n_head, block, batch): the sizes the lessons' stage scripts train at, and around them
SIZES = [(64, 4, 4, 64, 16), (96, 4, 4, 64, 16), (128, 4, 4, 128, 16), (128, 4, 4, 128, 32)]
VOCAB = 64
HP = TrainConfig(lr=1e-3, warmup=0, grad_clip=1.0, weight_decay=0.1)


def best_time(fn, steps, repeats):
    fn()  # warm-up: first-touch allocations, torch's lazy init
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        best = min(best, (time.perf_counter() - t0) / steps)
    return best


def numpy_step_fn(config, idx, targets):
    state = TrainState(GPT(config, seed=0).params)
    batch = (idx, targets, None)

    def step():
        train_step(state, batch, config, HP)
    return step


def torch_step_fn(config, idx, targets):
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=config.vocab_size, n_positions=config.block_size, n_embd=config.n_embd,
        n_layer=config.n_layer, n_head=config.n_head, activation_function="gelu_new",
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
        attn_implementation="eager")).train()
    hf.load_state_dict({k: torch.tensor(v) for k, v in to_hf_state_dict(GPT(config, seed=0).params).items()},
                       strict=False)
    opt = torch.optim.AdamW(hf.parameters(), lr=HP.lr, betas=(0.9, 0.95), eps=1e-8,
                            weight_decay=HP.weight_decay, foreach=True)
    ti, tt = torch.tensor(idx), torch.tensor(targets)

    def step():
        logits = hf(ti).logits
        loss = torch.nn.functional.cross_entropy(logits.view(-1, config.vocab_size), tt.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(hf.parameters(), HP.grad_clip)
        opt.step()
    return step


def main():
    print(f"threads={args.threads}  numpy {np.__version__}  torch {torch.__version__}  float32  "
          f"step = forward + backward + clip + AdamW  heap-temporaries={HEAP}")
    header = f"{'n_embd':>6} {'layers':>6} {'block':>5} {'batch':>5} | {'gpt_mini tok/s':>14} {'torch tok/s':>12} | ratio"
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    for C, L, H, T, B in SIZES:
        config = GPTConfig(vocab_size=VOCAB, block_size=T, n_layer=L, n_head=H, n_embd=C)
        idx = rng.integers(0, VOCAB, (B, T))
        targets = rng.integers(0, VOCAB, (B, T))
        t_np = best_time(numpy_step_fn(config, idx, targets), args.steps, args.repeats)
        t_torch = best_time(torch_step_fn(config, idx, targets), args.steps, args.repeats)
        tokens = B * T
        print(f"{C:>6} {L:>6} {T:>5} {B:>5} | {tokens / t_np:>14,.0f} {tokens / t_torch:>12,.0f} | "
              f"{t_torch / t_np:.2f}")


if __name__ == "__main__":
    main()
