"""widgets/shapes.py natively: its shapes are the real forward's, its counts the real params', its errors explained."""
import json
import time

import numpy as np
import pytest

import widgets
from gpt_mini.model import GPT, GPTConfig, init_params
from widgets import shapes

SMALL = [
    dict(B=2, T=5, block_size=8, n_embd=12, n_head=3, n_layer=2, vocab_size=11),
    dict(B=1, T=8, block_size=8, n_embd=8, n_head=1, n_layer=1, vocab_size=3),
    dict(B=3, T=1, block_size=4, n_embd=16, n_head=4, n_layer=3, vocab_size=16),   # C == V, T == 1: ambiguous sizes
]


def config_of(k):
    return GPTConfig(vocab_size=k["vocab_size"], block_size=k["block_size"], n_layer=k["n_layer"],
                     n_head=k["n_head"], n_embd=k["n_embd"])


def real_trace(k):
    """[(name, shape)] from the real forward on a real batch with real (random) params."""
    config = config_of(k)
    idx = np.random.default_rng(0).integers(0, k["vocab_size"], size=(k["B"], k["T"]))
    seen = []
    GPT(config, seed=1).forward(idx, trace=lambda name, a: seen.append((name, a.shape)))
    return seen


def rows_by_name(result):
    return {row["name"]: row for g in result["groups"] for row in g["rows"]}


@pytest.mark.parametrize("k", SMALL)
def test_shapes_are_the_real_forwards(k):
    r = shapes.compute(**k)
    assert r["ok"], r
    rows = rows_by_name(r)
    traced = real_trace(k)
    for name, shape in traced:
        # blocks 1..L-1 are shown once, as block 0 ×L: every one of them must match block 0's row
        shown = rows[name if not name.startswith("h.") else "h.0." + name.split(".", 2)[2]]
        assert tuple(shown["shape"]) == shape, name
    shown_block = [n for n in rows if n.startswith("h.")]
    assert sorted(shown_block) == sorted(n for n, _ in traced if n.startswith("h.0."))
    assert {n for n in rows if not n.startswith("h.")} == {n for n, _ in traced if not n.startswith("h.")}
    assert r["groups"][1]["repeat"] == k["n_layer"]


@pytest.mark.parametrize("k", SMALL)
def test_symbolic_shapes_evaluate_to_the_numbers(k):
    r = shapes.compute(**k)
    sym = r["symbols"]
    for row in rows_by_name(r).values():
        assert [sym[s] for s in row["symbolic"]] == row["shape"], row["name"]
    # spot-check the names, not just the values (C == V and T == 1 above make value-matching ambiguous)
    rows = rows_by_name(r)
    assert rows["embed"]["symbolic"] == ["B", "T", "C"]
    assert rows["h.0.attn.q"]["symbolic"] == ["B", "nh", "T", "hs"]
    assert rows["h.0.attn.mask"]["symbolic"] == ["T", "T"]             # the mask has no batch axis
    assert rows["h.0.mlp.c_fc"]["symbolic"] == ["B", "T", "4C"]
    assert rows["logits"]["symbolic"] == ["B", "T", "V"]


def test_rows_follow_the_data_flow_and_all_have_meanings():
    r = shapes.compute(**SMALL[0])
    keys = [row["key"] for row in r["groups"][1]["rows"]]
    assert keys == shapes.BLOCK_FLOW
    assert [row["key"] for row in r["groups"][0]["rows"]] == ["embed"]
    assert [row["key"] for row in r["groups"][2]["rows"]] == ["ln_f", "logits"]
    assert all(row["meaning"] for g in r["groups"] for row in g["rows"])


@pytest.mark.parametrize("k", SMALL + [p["knobs"] for p in shapes.PRESETS[:2]])
def test_param_counts_are_the_real_params(k):
    r = shapes.compute(**k)
    config = config_of(k)
    if k["vocab_size"] > 1000:   # GPT-2 small: count from shapes, don't allocate 124M floats
        from gpt_mini.model import param_shapes
        sizes = {n: int(np.prod(s)) for n, s in param_shapes(config).items()}
    else:
        sizes = {n: p.size for n, p in init_params(config).items()}
    assert r["params"]["total"] == sum(sizes.values())
    by = {c["key"]: c["count"] for c in r["params"]["components"]}
    assert by["embeddings"] == sizes["wte"] + sizes["wpe"]
    assert by["attention"] == sum(v for n, v in sizes.items() if ".attn." in n)
    assert by["mlp"] == sum(v for n, v in sizes.items() if ".mlp." in n)
    assert by["layernorm"] == sum(v for n, v in sizes.items() if "ln_" in n)
    assert "other" not in by
    assert r["params"]["mb_f32"] == pytest.approx(4 * r["params"]["total"] / 1e6)


def test_gpt2_small_has_its_published_parameter_count():
    r = shapes.compute(**shapes.PRESETS[1]["knobs"])
    assert r["params"]["total"] == 124_439_808          # GPT2LMHeadModel, tied head
    assert rows_by_name(r)["logits"]["shape"] == [8, 1024, 50257]


@pytest.mark.parametrize("change, knobs, words", [
    (dict(n_head=5), ["n_embd", "n_head"], "divisible"),
    (dict(T=65), ["T", "block_size"], "exceeds block_size"),
    (dict(n_head=0), ["n_head"], "positive integer"),
    (dict(n_layer=-1), ["n_layer"], "positive integer"),
    (dict(vocab_size=0), ["vocab_size"], "positive integer"),
    (dict(B=0), ["B"], "positive integer"),
    (dict(T=0), ["T"], "positive integer"),
    (dict(n_embd=2.5), ["n_embd"], "positive integer"),
    (dict(block_size="64"), ["block_size"], "positive integer"),
])
def test_breaking_configurations_are_explained_not_raised(change, knobs, words):
    r = shapes.compute(**{**shapes.DEFAULT_KNOBS, **change})
    assert r["ok"] is False
    assert words in r["problem"]["message"]
    assert r["problem"]["hint"]
    assert set(knobs) <= set(r["problem"]["knobs"])
    assert r["knobs"] == {**shapes.DEFAULT_KNOBS, **change}


def test_presets_include_the_breaking_ones():
    results = [shapes.compute(**p["knobs"]) for p in shapes.presets()]
    assert [r["ok"] for r in results].count(False) == 2
    assert set(shapes.presets()[0]["knobs"]) == set(shapes.KNOBS)


def test_largest_settings_are_fast_natively():
    biggest = dict(B=512, T=2048, block_size=2048, n_embd=2048, n_head=32, n_layer=48, vocab_size=65536)
    shapes.compute(**{**biggest, "n_layer": 47})          # warm the mask cache, as the widget's last call does
    t0 = time.perf_counter()
    r = shapes.compute(**biggest)
    assert r["ok"]
    assert time.perf_counter() - t0 < 0.1
    assert len(json.dumps(r)) < 50_000                    # shown once per block, not ×48


def test_dispatch_round_trips_json_and_refuses_non_public_names():
    ok = json.loads(widgets.dispatch("shapes", "compute", json.dumps(SMALL[0])))
    assert ok["ok"] and ok["result"]["symbols"]["hs"] == 4
    for widget, fn in [("shapes", "_problem"), ("shapes", "np"), ("shapes", "GPTConfig"), ("shapes", "param_shapes"),
                       ("shapes", "__init__"), ("../x", "compute"), ("nope", "compute")]:
        err = json.loads(widgets.dispatch(widget, fn, "{}"))
        assert err["ok"] is False and err["error"]["type"] in ("AttributeError", "ValueError", "ModuleNotFoundError")
        assert err["error"]["message"]
    bad = json.loads(widgets.dispatch("shapes", "compute", '{"nonsense": 1}'))
    assert bad == {"ok": False, "error": {"type": "TypeError", "message": bad["error"]["message"]}}
    assert "nonsense" in bad["error"]["message"]
    assert json.loads(widgets.dispatch("shapes", "compute", "[1]"))["error"]["type"] == "TypeError"


def test_non_finite_floats_travel_as_marked_strings():
    assert widgets.to_jsonable({"a": [np.float32("nan"), float("inf"), -np.inf, np.int64(3)]}) == \
        {"a": ["NaN", "Infinity", "-Infinity", 3]}


def test_dtypes_are_traced_from_a_float32_model():
    # The real model keeps float32 activations (a NumPy-scalar constant once promoted everything to float64).
    r = shapes.compute(**SMALL[0])
    dtypes = {row["key"]: row["dtype"] for g in r["groups"] for row in g["rows"]}
    assert dtypes.pop("attn.mask") == "bool"
    assert set(dtypes.values()) == {"float32"}
    mask = rows_by_name(r)["h.0.attn.mask"]
    assert mask["mb"] == mask["numel"] / 1e6


def test_lesson_preset_and_defaults_are_the_model_the_series_trains():
    """The "Lesson model" preset is 00_pretrain.LESSON (the config in results/00_pretrain.json), and the widget
    counts the same parameters as the results file (458,208 today)."""
    import json
    from pathlib import Path
    results = json.loads((Path(__file__).resolve().parent.parent / "results" / "00_pretrain.json").read_text())
    lesson = shapes.presets()[0]
    assert lesson["name"].startswith("Lesson model") and f"{results['params']:,}" in lesson["name"]
    m = results["config"]["model"]
    assert lesson["knobs"] == {"B": results["config"]["train"]["batch_size"], "T": m["block_size"], **m}
    assert shapes.DEFAULT_KNOBS == lesson["knobs"]
    assert shapes.compute(**lesson["knobs"])["params"]["total"] == results["params"]
