import json
from pathlib import Path

import numpy as np
import pytest

from conftest import committed

import gpt_mini
from gpt_mini import checkpoint, world
from gpt_mini.data import get_batch

pretrain = gpt_mini.stage("00_pretrain")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain")
    pretrain.main(["--quick", "--out", str(out)])
    return out, json.loads((out / "results" / "00_pretrain.json").read_text())


def test_quick_run_beats_the_unigram_baseline_by_far(quick_run):
    _, results = quick_run
    losses = [s["val_loss"] for s in results["snapshots"]]
    assert losses[0] == pytest.approx(results["baselines"]["uniform"], abs=0.1)   # untrained: near uniform
    assert losses[-1] < results["baselines"]["unigram"] - 0.7
    assert losses == sorted(losses, reverse=True)


def test_quick_run_writes_loadable_snapshots_and_a_complete_results_file(quick_run):
    out, results = quick_run
    assert [s["step"] for s in results["snapshots"]] == list(pretrain.QUICK.snapshots)
    for snap in results["snapshots"]:
        config, tok, params, meta = checkpoint.load(out / "checkpoints" / snap["checkpoint"])
        assert config == pretrain.QUICK.model and meta["step"] == snap["step"]
        assert set(snap["accuracy"]) == {"city", "pet", "job", "sums", "grammar"}
        assert len(snap["samples"]["questions"]) == len(world.question_probes())
    assert results["final"] == results["snapshots"][-1]
    assert results["curve"][0][0] == pretrain.QUICK.curve_every


def test_same_seed_same_training():
    cfg = pretrain.QUICK
    train_ids, _ = pretrain.encode_corpus(cfg)
    from gpt_mini.model import GPT
    from gpt_mini.train import TrainState, train_step

    def losses():
        state = TrainState(GPT(cfg.model, seed=0).params)
        rng = np.random.default_rng(0)
        return [train_step(state, get_batch(train_ids, cfg.model.block_size, 8, rng), cfg.model,
                           cfg.train)[1]["loss"] for _ in range(3)]
    assert losses() == losses()


def test_committed_results_match_the_committed_checkpoint():
    """The shipped results file describes the shipped checkpoint: re-score it and compare."""
    results, config, params, meta = committed("00_pretrain")
    cfg = pretrain.LESSON
    assert config == cfg.model and meta["step"] == cfg.train.steps
    _, val_ids = pretrain.encode_corpus(cfg)
    batches = pretrain.eval_batches(val_ids, cfg, cfg.eval_batches)
    from gpt_mini.train import mean_loss
    assert mean_loss(params, config, batches) == pytest.approx(results["final"]["val_loss"], rel=1e-5)
    probes = world.fact_probes()
    city = np.mean([pretrain.probe(params, config, p).strip(" .") == a for r, p, a in probes if r == "city"])
    assert city == pytest.approx(results["final"]["accuracy"]["city"])
    assert pretrain.repeat_probability(params, config, batches) == pytest.approx(results["final"]["p_repeat"],
                                                                                  rel=1e-5)
    assert results["compression"] == pretrain.yardsticks(world.pretrain_corpus(cfg.corpus)[1], cfg.corpus.seed)


def test_entropy_rate_matches_documents_sampled_from_the_generator():
    """The enumerated source (sentence_distributions, DOC_KINDS) is world._document's: sampled validation
    documents are made of its sentences, and their mean length and mean -log p agree with entropy_rate."""
    import math
    import random
    import re
    dists = pretrain.sentence_distributions()
    rate = pretrain.entropy_rate()
    W = sum(pretrain.DOC_KINDS.values())
    rng, people, held_out = random.Random("entropy-test"), world.people(), world.held_out_sums()
    lengths, nats = [], []
    for _ in range(4000):
        doc = world._document(rng, people, held_out, "val")
        sentences = [s.strip() for s in re.findall(r"[^.?]+[.?]", doc)]
        assert " ".join(sentences) == doc
        kinds = [next(k for k, d in dists.items() if s in d) for s in sentences]
        p_seq = math.prod(dists[k][s] for k, s in zip(kinds, sentences))
        n = len(sentences)
        p = 0.0
        if len(set(kinds)) == 1:
            p += pretrain.DOC_KINDS[kinds[0]] / W * p_seq
        if "quiz" not in kinds:
            p += pretrain.DOC_KINDS["mixed"] / W * p_seq * 3.0 ** -n
        nats.append(-math.log(p / len(pretrain.SENTENCES_PER_DOC)))
        lengths.append(len(doc) + 1)
    assert np.mean(lengths) == pytest.approx(rate["chars_per_doc"], rel=0.02)
    assert np.mean(nats) == pytest.approx(rate["doc_nats"], rel=0.02)


def test_sum_digits_reads_places_from_the_right():
    d = pretrain.sum_digits({(95, 7): "102.", (14, 3): "16.", (28, 5): "33"})
    assert d["n"] == 3 and d["exact"] == pytest.approx(2 / 3)
    assert d["units"] == pytest.approx(2 / 3) and d["tens"] == 1.0 and d["hundreds"] == 1.0 and d["n_hundreds"] == 1
    assert d["carry"] == 1.0 and d["no_carry"] == 0.0
