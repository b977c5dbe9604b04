"""Shared test plumbing: optional heavy dependencies skip locally, but never in CI."""

import importlib
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(module):
    """Import `module`, or skip with a reason (fail in CI, where everything must run)."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if IN_CI:
            pytest.fail(f"{module} is required in CI but cannot be imported: {e}")
        pytest.skip(f"{module} is not installed ({e}); `make test` installs it")


def assert_grads_match_fd(loss, params, grads, names, per_param=3, seed=3, h=1e-6, abs_tol=1e-9):
    """Central finite differences of loss(params) -> float, on `per_param` random entries of each named parameter,
    against the analytic `grads` (float64 params: agreement to rel 1e-5)."""
    import numpy as np
    for name in names:
        p = params[name]
        for i in np.random.default_rng(seed).choice(p.size, per_param, replace=False):
            old = p.flat[i]
            p.flat[i] = old + h
            up = loss(params)
            p.flat[i] = old - h
            down = loss(params)
            p.flat[i] = old
            assert grads[name].flat[i] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=abs_tol), (name, i)


def committed(stage):
    """A stage's shipped results and final checkpoint, (results, config, params, meta); missing files fail, since
    the site is built from them."""
    import json
    from gpt_mini import checkpoint
    results_path, ckpt_path = ROOT / "results" / f"{stage}.json", ROOT / "checkpoints" / f"{stage}.npz"
    for path in (results_path, ckpt_path):
        if not path.exists():
            pytest.fail(f"{path.relative_to(ROOT)} is missing: run `python -m gpt_mini.{stage}`")
    config, _, params, meta = checkpoint.load(ckpt_path)
    return json.loads(results_path.read_text()), config, params, meta


def quick_stage_run(tmp_path_factory, stage, start_from):
    """`python -m gpt_mini.<stage> --quick` into a fresh folder holding the shipped checkpoint it starts from;
    returns (folder, its results)."""
    import json
    import shutil
    from gpt_mini import stage as stage_module
    out = tmp_path_factory.mktemp(stage)
    (out / "checkpoints").mkdir()
    shutil.copy(ROOT / "checkpoints" / start_from, out / "checkpoints")
    stage_module(stage).main(["--quick", "--out", str(out)])
    return out, json.loads((out / "results" / f"{stage}.json").read_text())


def dispatch_ok(widget, fn, **args):
    """`widget.fn(**args)` through the same JSON entry point the browser's worker uses; asserts it succeeded and
    returns its result."""
    import json
    import widgets
    reply = json.loads(widgets.dispatch(widget, fn, json.dumps(args)))
    assert reply["ok"], reply
    return reply["result"]


def dispatch_error(widget, fn, **args):
    """As dispatch_ok, for a call that must fail: returns the reply's error ({"type", "message", ...})."""
    import json
    import widgets
    reply = json.loads(widgets.dispatch(widget, fn, json.dumps(args)))
    assert not reply["ok"], reply
    return reply["error"]
