"""A knob fuzzer for any widget: written once, every widget gets it by one parametrization line in test_fuzz.py.

It discovers the widget's controls generically (every <input> and <select> inside `[data-widget=NAME]`), then for
each of `rounds` rounds changes a random few of them to random values -- on the step grid, often exactly at
min/max or one step inside -- and fires `input` + `change` as a user would. After every round the widget must
settle within `timeout_ms` into `ready`, or into `error` with a non-empty explanation on screen, and the page must
have logged no console error and thrown no uncaught exception. Now and then it presses Reset too.

A failure names the seed, the round and the exact settings, so `FUZZ_SEED=<seed>` replays it.
"""
import math
import os
import random
import time
from dataclasses import dataclass, field

from .widgetpage import root_selector

DISCOVER_JS = """sel => {
    const root = document.querySelector(sel);
    const controls = [...root.querySelectorAll("input, select")].filter(e => !e.disabled && e.type !== "hidden");
    return controls.map((e, i) => {
        e.dataset.fuzzId = String(i);
        const label = (e.labels && e.labels[0] && e.labels[0].textContent.trim()) || e.getAttribute("aria-label") || e.name;
        return {id: String(i), tag: e.tagName.toLowerCase(), type: e.type, label,
                min: e.min, max: e.max, step: e.step,
                options: e.tagName === "SELECT" ? [...e.options].filter(o => !o.disabled).map(o => o.value) : []};
    });
}"""

APPLY_JS = """([sel, changes]) => {
    const root = document.querySelector(sel);
    for (const [id, value] of changes) {
        const e = root.querySelector(`[data-fuzz-id="${id}"]`);
        if (!e) continue;                            // the widget redrew its controls: skip, rediscover next round
        if (e.type === "checkbox" || e.type === "radio") e.checked = value; else e.value = String(value);
        e.dispatchEvent(new Event("input", {bubbles: true}));
        e.dispatchEvent(new Event("change", {bubbles: true}));
    }
}"""

SETTLED_JS = """sel => new Promise(resolve => requestAnimationFrame(() => requestAnimationFrame(() => {
    const e = document.querySelector(sel);
    resolve(e ? [e.dataset.status, e.getAttribute("aria-busy")] : null);
})))"""

STATE_JS = """sel => {
    const e = document.querySelector(sel);
    const err = e.querySelector(".w-error");
    return {status: e.dataset.status, busy: e.getAttribute("aria-busy"),
            error: err && !err.hidden ? err.textContent.trim() : ""};
}"""

WAIT_JS = """sel => {
    const e = document.querySelector(sel);
    const s = e && e.dataset.status;
    return (s === "ready" || s === "error") && e.getAttribute("aria-busy") === "false";
}"""


@dataclass
class Report:
    rounds: int = 0
    statuses: dict = field(default_factory=dict)
    errors_explained: set = field(default_factory=set)
    slowest_ms: float = 0.0
    controls: list = field(default_factory=list)


def _grid(control):
    lo = float(control["min"]) if control["min"] not in ("", None) else 0.0
    hi = float(control["max"]) if control["max"] not in ("", None) else lo + 100.0
    step = control["step"]
    step = None if step in ("any",) else float(step) if step not in ("", None) else 1.0
    return lo, hi, step


def _number(x):
    return int(x) if float(x).is_integer() else round(x, 10)


def pick_value(rng, control):
    """A value for one control: on its step grid, at or next to an edge about a third of the time."""
    if control["tag"] == "select":
        return rng.choice(control["options"]) if control["options"] else None
    if control["type"] in ("checkbox", "radio"):
        return rng.random() < 0.5
    if control["type"] not in ("range", "number"):
        return None                                  # free text has no generic domain: leave it alone
    lo, hi, step = _grid(control)
    if step is None:
        edges = [lo, hi]
        return _number(rng.choice(edges) if rng.random() < 0.35 else rng.uniform(lo, hi))
    n = max(0, math.floor((hi - lo) / step + 1e-9))
    if rng.random() < 0.35:
        k = rng.choice([0, n, min(1, n), max(n - 1, 0)])
    else:
        k = rng.randint(0, n)
    return _number(lo + k * step)


def fuzz(watched, widget, rounds=None, seed=None, timeout_ms=15_000, reset_every=None):
    """Drive `widget` on `watched.page` (a booted harness.Watched) through random knob settings; return a Report.

    Raises AssertionError naming seed, round and settings on the first hang, unexplained error or page error."""
    page = watched.page
    sel = root_selector(widget)
    rounds = int(os.environ.get("FUZZ_ROUNDS", rounds or 250))
    seed = int(os.environ.get("FUZZ_SEED", seed if seed is not None else random.randrange(1 << 30)))
    rng = random.Random(seed)
    report = Report()
    controls = page.evaluate(DISCOVER_JS, sel)
    report.controls = [c["label"] for c in controls]
    assert controls, f"widget {widget}: no controls found"
    history = []

    def fail(why):
        raise AssertionError(f"fuzz {widget} seed={seed} round={report.rounds}: {why}\n"
                             f"last settings: {history[-3:]}\npage problems: {watched.problems()}")

    for r in range(rounds):
        report.rounds = r + 1
        if reset_every and rng.random() < 1 / reset_every and page.locator(f"{sel} .w-reset").count():
            history.append("Reset")
            page.locator(f"{sel} .w-reset").click()
        else:
            chosen = rng.sample(controls, k=rng.randint(1, min(3, len(controls))))
            changes = [(c["id"], v) for c in chosen if (v := pick_value(rng, c)) is not None]
            history.append({c["label"]: v for c in chosen for (i, v) in changes if i == c["id"]})
            page.evaluate(APPLY_JS, [sel, changes])
        t0 = time.perf_counter()
        page.evaluate(SETTLED_JS, sel)               # two frames: let a widget that debounces start its work
        try:
            page.wait_for_function(WAIT_JS, arg=sel, timeout=timeout_ms, polling=20)
        except Exception as e:  # playwright TimeoutError
            fail(f"did not settle within {timeout_ms} ms (state {page.evaluate(STATE_JS, sel)}): {e}")
        report.slowest_ms = max(report.slowest_ms, (time.perf_counter() - t0) * 1e3)
        state = page.evaluate(STATE_JS, sel)
        report.statuses[state["status"]] = report.statuses.get(state["status"], 0) + 1
        if state["status"] == "error":
            if not state["error"]:
                fail("status is error but no explanation is shown")
            report.errors_explained.add(state["error"][:80])
        if watched.errors:
            fail("the page logged an error")
        if len(controls) != page.evaluate("sel => document.querySelector(sel).querySelectorAll('input, select').length",
                                          sel):
            controls = page.evaluate(DISCOVER_JS, sel)   # a widget may add controls (e.g. options after boot)
    return report
