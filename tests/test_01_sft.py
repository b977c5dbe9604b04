"""Stage 01, SFT: the data keeps its held-out prompts held out, the mask variants, the loss, and a quick run."""
from pathlib import Path

import numpy as np
import pytest

from conftest import committed, quick_stage_run

import gpt_mini
from gpt_mini import chat, world
from gpt_mini.data import pad_batch
from gpt_mini.model import GPT, GPTConfig, forward
from gpt_mini.train import next_token_loss

sft = gpt_mini.stage("01_sft")
ROOT = Path(__file__).resolve().parent.parent
TOK = world.tokenizer()


def test_training_conversations_never_ask_a_held_out_fact_or_sum_and_fit_the_context():
    convs = sft.conversations(sft.QUICK, 64)
    held_facts = world.held_out_facts()
    held_questions = {p.format(name=n) for n, r in held_facts for p in world.TRAIN_PHRASINGS[r]}
    held_questions |= {world.HELD_OUT_PHRASINGS[r].format(name=n) for n in world.NAMES for r in world.FACT_TEMPLATES}
    held_sums = {world.sum_sentence(a, b) for a, b in world.held_out_sums()}
    for turns in convs:
        assert len(chat.render(turns)[0]) <= 65
        for role, text in turns:
            assert text not in held_questions and text not in held_sums
    assert any(len(t) == 4 for t in convs)                    # some two-exchange conversations
    for name, items in sft.eval_sets().items():
        assert items and all(turns[-1][0] == "user" for turns, _ in items), name


def test_loss_weights_variants():
    turns = [("user", "hi"), ("assistant", "ab.")]
    ids, w = chat.render(turns)        # <u> h i <e> <a> a b . <e>
    assert list(sft.loss_weights(ids, w)) == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert list(sft.loss_weights(ids, w, "all")) == [1] * 9
    assert list(sft.loss_weights(ids, w, "no_end")) == [0, 0, 0, 0, 0, 1, 1, 1, 0]
    assert list(sft.loss_weights(ids, w, shift=-2)) == [0, 0, 0, 1, 1, 1, 1, 1, 1]   # leaks <e> <a>
    assert list(sft.loss_weights(ids, w, shift=2)) == [0, 0, 0, 0, 0, 0, 0, 1, 1]    # cuts "ab"
    with pytest.raises(ValueError, match="mask must be"):
        sft.loss_weights(ids, w, "prompt")


def test_the_sft_loss_is_minus_the_mean_log_prob_of_the_learned_tokens():
    config = GPTConfig(vocab_size=TOK.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=16)
    params = GPT(config, seed=0, dtype=np.float64).params
    rows = [chat.render([("user", "1+2=?"), ("assistant", "1+2=3.")]), chat.render([("user", "a"), ("assistant", "b")])]
    idx, targets, mask = pad_batch([(ids, sft.loss_weights(ids, w)) for ids, w in rows], pad_id=0)
    loss, grads, _ = next_token_loss(params, (idx, targets, mask), config)
    logits, _ = forward(params, idx, config)
    logsm = logits - np.log(np.exp(logits).sum(-1, keepdims=True))   # a direct log-softmax, no shared code
    direct = -np.mean([logsm[b, t, targets[b, t]] for b, t in zip(*np.nonzero(mask))])
    assert loss == pytest.approx(direct, rel=1e-12)
    assert mask.sum() == 7 + 2                                 # "1+2=3." + <e>, "b" + <e>


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    return quick_stage_run(tmp_path_factory, "01_sft", "00_pretrain.npz")


def test_a_quick_run_teaches_the_format_and_raises_held_out_accuracy(quick_run):
    out, r = quick_run
    before, after = r["before"]["all"], r["runs"]["sft"]["all"]
    assert before["ends_turn"] == 0 and before["accuracy"] == 0
    assert after["ends_turn"] > 0.9 and after["accuracy"] > 0.2
    assert r["runs"]["sft"]["loss"]["assistant"] < r["before"]["loss"]["assistant"]
    assert (out / "checkpoints" / "01_sft.npz").exists()
    assert set(r["runs"]) == {"sft", "all_tokens"}


def test_committed_results_describe_the_committed_checkpoint():
    r, config, params, meta = committed("01_sft")
    assert meta["step"] == sft.LESSON.train.steps
    sets = {k: v for k, v in sft.eval_sets().items() if k == "held_out_sums"}
    assert sft.score(params, config, sets)["held_out_sums"]["accuracy"] == pytest.approx(
        r["runs"]["sft"]["held_out_sums"]["accuracy"])
