"""Browser-test plumbing: build the real site once, serve it on 127.0.0.1, drive Debian's Chromium.

- `site_url`   session: `python build.py --strict --out <tmp>` (the real build, as CI builds it), served by a
               threaded http.server.
- `browser`    session: one Chromium for the whole run.
- `open_page`  function: a factory of fresh, watched pages (own context); teardown asserts the page logged no
               console error, threw no uncaught exception and asked for nothing outside 127.0.0.1.
- `booted_widget(name, *paths, restore=None)` a factory of a widget test module's two fixtures, one line there:
                   booted, page = booted_widget(NAME, "widgets/NAME.html", restore=wait_for_defaults)
               `booted` (module scope, one per path): a watched page, booted once and shared by the module's tests
               (Python takes seconds to start); `page` (each test): that page after Reset, once `restore(page)` saw
               the widget's restored state and it settled; the test fails if the page logged an error or left
               127.0.0.1.
Without Chromium the tests skip locally and fail under CI=true.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import CHROMIUM_ARGS, Watched, find_chromium, page_exists, serve
from .widgetpage import root_selector, wait_booted, wait_settled

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


def booted_widget(name, *paths, restore=None):
    """(booted, page) fixtures for widget `name` on each of `paths` (site-relative pages); see the module docstring.

    restore(page), if given, waits after each Reset until the widget shows its restored state (e.g. the result for
    its default knobs): Reset alone returns before the widget's Python calls have answered."""
    root = root_selector(name)

    @pytest.fixture(scope="module", params=paths if len(paths) > 1 else None)
    def booted(request, browser, site_url, site_dir):
        path = getattr(request, "param", paths[0])
        if not page_exists(site_dir, path):
            pytest.fail(f"{path} is not in the built site")
        w = Watched(browser)
        try:
            w.page.goto(site_url + path)
            assert wait_booted(w.page, name) == "ready", w.page.inner_text(root)
            yield w
        finally:
            w.close()

    @pytest.fixture
    def page(booted):
        p = booted.page
        p.locator(f"{root} .w-reset").click()
        if restore:
            restore(p)
        wait_settled(p, name)
        yield p
        booted.assert_clean()

    return booted, page
