"""Browser-test plumbing: build the real site once, serve it on 127.0.0.1, drive Debian's Chromium.

- `site_url`   session: `python build.py --strict --out <tmp>` (the real build, as CI builds it), served by a
               threaded http.server.
- `browser`    session: one Chromium for the whole run.
- `open_page`  function: a factory of fresh, watched pages (own context); teardown asserts the page logged no
               console error, threw no uncaught exception and asked for nothing outside 127.0.0.1.
- `booted`     module, defined by each widget's test module (not here): one watched page per widget page, booted
               once and shared by that module's tests (Python takes seconds to start; the tests restore the knobs
               with Reset instead of reloading).
Without Chromium the tests skip locally and fail under CI=true.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import CHROMIUM_ARGS, Watched, find_chromium, serve

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason):
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser tests must run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path():
    path = find_chromium()
    if not path:
        _unavailable("Chromium not found at /usr/bin/chromium or on PATH (Debian: apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        _unavailable(f"playwright is not installed ({e})")
    return path


@pytest.fixture(scope="session")
def site_dir(tmp_path_factory, chromium_path):
    out = tmp_path_factory.mktemp("browser-site") / "site"
    proc = subprocess.run([sys.executable, "build.py", "--strict", "--out", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"build.py failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return out


@pytest.fixture(scope="session")
def site_url(site_dir):
    srv, base = serve(site_dir)
    yield base
    srv.shutdown()


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def open_page(browser, site_url):
    """open_page(path, hash="", viewport=None, clean=True, before=None) -> Watched, navigated (after
    `before(context)`, e.g. extra routes); closed, and unless clean=False checked, at teardown."""
    opened = []

    def _open(path, hash="", viewport=None, clean=True, before=None):
        w = Watched(browser, viewport)
        w.expect_clean = clean
        opened.append(w)
        if before:
            before(w.context)
        w.page.goto(site_url + path + hash)
        return w

    yield _open
    for w in opened:
        try:
            if w.expect_clean:
                w.assert_clean()
        finally:
            w.close()


