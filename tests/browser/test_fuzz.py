"""Knob fuzz for every widget: add one line to TARGETS when a widget lands."""
import pytest

from .fuzz import fuzz
from .widgetpage import wait_booted

pytestmark = pytest.mark.browser

TARGETS = [
    # (standalone page, widget name, rounds)
    ("widgets/shapes.html", "shapes", 250),
    # knobs only: the fuzzer never presses Train, so no training run starts; each round is a start() or a snapshot
    ("widgets/pretrain.html", "pretrain", 40),
    ("widgets/sft.html", "sft", 60),             # knobs only: the token view redraws; no training starts
    ("widgets/attention.html", "attention", 60),  # prompt and preset; each round is one traced forward
    ("widgets/dpo.html", "dpo", 30),              # knobs only: each run-knob change starts a session (pairs built once)
    ("widgets/cot.html", "cot", 40),              # knobs only: each round is one view(); nothing is answered
    ("widgets/grpo.html", "grpo", 40),            # knobs only: each round samples one group(); nothing trains
]


@pytest.mark.parametrize("path, widget, rounds", TARGETS, ids=[t[1] for t in TARGETS])
def test_knob_fuzz(open_page, site_dir, path, widget, rounds):
    if not (site_dir / path).is_file():
        pytest.fail(f"{path} missing from the built site")
    w = open_page(path)
    assert wait_booted(w.page, widget) == "ready"
    report = fuzz(w, widget, rounds=rounds, reset_every=25)
    print(f"\nfuzz {widget}: {report.rounds} rounds over {len(report.controls)} controls, statuses {report.statuses}, "
          f"slowest settle {report.slowest_ms:.0f} ms, {len(report.errors_explained)} distinct explanations")
    assert report.rounds == rounds
    assert "ready" in report.statuses or "error" in report.statuses
    w.assert_clean()
