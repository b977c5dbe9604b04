"""widgets/cot.py natively, through the worker's JSON entry point: every range is 02_cot's, the answers parse, the
accuracy per n is 02_cot.evaluate's on the same problems, the trace view marks 02_cot.first_error, an n beyond the
trained range and a too-hot temperature are flagged and explained from what was measured, bad knobs are readable."""
from pathlib import Path

import pytest
from conftest import dispatch_ok, dispatch_error

import gpt_mini
from gpt_mini import checkpoint
from widgets import cot

stage = gpt_mini.stage("02_cot")
ROOT = Path(__file__).resolve().parent.parent
PATHS = {"direct": str(ROOT / cot.CHECKPOINTS["direct"]), "cot": str(ROOT / cot.CHECKPOINTS["cot"]),
         "results": str(ROOT / cot.RESULTS)}

pytestmark = pytest.mark.skipif(not all(Path(p).is_file() for p in PATHS.values()),
                                reason="needs 02_cot's checkpoints and results (python -m gpt_mini.02_cot)")


def call(fn, **args):
    return dispatch_ok("cot", fn, **args)


def error(fn, **args):
    return dispatch_error("cot", fn, **args)["message"]


def run(temperature=0, seed=0, n=2, count=16, until=None):
    """A whole experiment (or until `until(result)`), answered in chunks as the UI does: the last step's result and
    the problems answered per n."""
    s = call("start", temperature=temperature, seed=seed, **PATHS)["session"]
    asked = {}
    while True:
        r = call("step", session=s, n=n, count=count)
        asked.setdefault(r["answered_at"], []).extend(r["answered"])
        if r["status"] == "done" or (until and until(r)):
            return s, r, asked


@pytest.fixture(scope="module")
def greedy():
    return run()


def test_info_takes_every_range_from_the_stage():
    i = call("info")
    assert i["trained"] == list(stage.LESSON.trained) and i["evaluated"] == list(stage.LESSON.evaluated)
    assert i["beyond"] == [n for n in range(i["evaluated"][0], i["evaluated"][1] + 1)
                           if not i["trained"][0] <= n <= i["trained"][1]] == [6, 7]
    assert i["defaults"] == cot.DEFAULT_KNOBS and 0 in i["temperatures"] and 1.5 in i["temperatures"]
    assert i["checkpoints"] == cot.CHECKPOINTS and i["model"] == cot.MODEL and i["model_note"]


def test_answers_parse_and_accuracy_per_n_is_the_stages_evaluate_on_the_same_problems(greedy):
    _, r, asked = greedy
    assert r["status"] == "done" and r["step"] == r["steps"] == cot.PER_N * 6
    assert sorted(asked) == list(range(2, 8)) and all(len(p) == cot.PER_N for p in asked.values())
    for name in ("direct", "cot"):
        config, _, params, _ = checkpoint.load(PATHS[name])
        ref = stage.evaluate(params, config, asked)
        for n, v in ref.items():
            mine = r["tallies"][n][name]
            assert mine["answered"] == v["n"] == cot.PER_N
            assert mine["correct"] == v["correct"], (name, n)
            assert mine["interval"] == pytest.approx(stage.wilson(v["correct"], v["n"]))
            assert mine["tokens"] == pytest.approx(v["tokens"])
    t = r["tallies"]
    # the lesson's gap: CoT ahead inside the trained range; both fail beyond it
    assert t["4"]["cot"]["accuracy"] > t["4"]["direct"]["accuracy"] + 0.3
    assert t["5"]["cot"]["tokens"] > 2 * t["5"]["direct"]["tokens"]
    assert t["7"]["cot"]["accuracy"] <= 0.1 and t["7"]["direct"]["accuracy"] <= 0.1


def test_the_trace_marks_the_first_wrong_partial_sum(greedy):
    s, _, _ = greedy
    v = call("view", session=s, n=7)
    tr = v["trace"]
    assert v["traces_wrong"] > 0 and tr["first_error"] == stage.first_error(tr["summands"], tr["reply"]) is not None
    assert "".join(p["text"] for p in tr["parts"]) == tr["reply"]
    assert tr["expected_text"] == stage.cot_answer(tr["summands"]) and tr["question"] == stage.question(tr["summands"])
    sums = [p for p in tr["parts"] if p["kind"] == "sum"]
    marked = [p for p in sums if p["first_error"]]
    if tr["missing"]:
        assert not marked and tr["missing"]["index"] == len(sums) == tr["first_error"]
    else:
        (m,) = marked
        assert m["index"] == tr["first_error"] and int(m["text"]) != m["expected"] == tr["expected"][m["index"]]
        assert all(int(p["text"]) == p["expected"] for p in sums[:m["index"]])
    assert stage.final_answer(tr["reply"]) != tr["answer"] or not tr["ended"] or tr["right"]


def test_beyond_the_trained_range_is_flagged_with_the_measured_failure(greedy):
    s, _, _ = greedy
    assert call("view", session=s, n=5)["beyond"] is None
    for n in (6, 7):
        b = call("view", session=s, n=n)["beyond"]
        assert b and "beyond the trained range" in b["what"] and "length generalisation" in b["why"]
        assert "CoT 0/40" in b["what"] or "CoT 1/40" in b["what"] or "CoT 2/40" in b["what"]
        assert b["try"]
    before = call("view", session=None, n=7)["beyond"]     # no experiment yet: the words, without figures
    assert before and "Here" not in before["what"]


def test_a_hot_temperature_is_flagged_from_the_measured_drop_and_greedy_is_not(greedy):
    assert greedy[1]["hot"] is None
    _, r, _ = run(temperature=1.5, until=lambda r: r["hot"] is not None or r["step"] >= 4 * cot.PER_N)
    hot = r["hot"]
    assert hot and hot["temperature"] == 1.5 and hot["accuracy"] < hot["greedy"] - 0.2
    assert "wrong digit" in hot["why"] and "temperature" in hot["try"]


def test_sampling_is_reproducible_and_independent_of_the_chunking():
    a = run(temperature=1.0, seed=3, count=16, until=lambda r: r["step"] >= 16)[1]
    b = run(temperature=1.0, seed=3, count=4, until=lambda r: r["step"] >= 16)[1]
    assert a["tallies"]["2"]["cot"]["answered"] == 16 and b["answered_at"] == 2
    assert a["tallies"] == b["tallies"] and a["trace"] == b["trace"]
    c = run(temperature=1.0, seed=4, count=16, until=lambda r: r["step"] >= 16)[1]
    assert c["trace"] != a["trace"] or c["tallies"] != a["tallies"]     # another seed, other problems


def test_bad_knobs_are_readable_errors():
    assert "n must be between 2 and 7, got 9" in error("view", session=None, n=9)
    assert "n must be a whole number" in error("view", session=None, n=2.5)
    assert "temperature must be between 0 and 2" in error("start", temperature=5, **PATHS)
    assert "temperature must be 0 (greedy) or at least 0.05" in error("start", temperature=0.01, **PATHS)
    assert "seed must be a number" in error("start", seed="x", **PATHS)
    assert "must be the path of a .npz checkpoint" in error("start", direct="x.txt")
    s = call("start", **PATHS)["session"]
    assert "count must be between 1 and 16" in error("step", session=s, count=0)
    call("close", session=s)
    assert "no training session" in error("step", session=s)
