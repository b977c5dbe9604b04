"""Browser-test plumbing: build the real site once, serve it on 127.0.0.1, drive Debian's Chromium.

- `site_url`   session: `python build.py --out <tmp>` (the real build), served by a threaded http.server.
- `browser`    session: one Chromium for the whole run.
- `open_page`  function: a factory of fresh, watched pages (own context); teardown asserts the page logged no
               console error, threw no uncaught exception and asked for nothing outside 127.0.0.1.
- `booted`     module: one watched page per widget page, booted once and shared by a module's tests (Python
               takes seconds to start; the tests restore the knobs with Reset instead of reloading).
Without Chromium the tests skip locally and fail under CI=true.
"""
import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
MIME = {".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript", ".json": "application/json",
        ".zip": "application/zip", ".whl": "application/zip", ".css": "text/css"}


def _unavailable(reason):
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser tests must run)")
    pytest.skip(reason)


def find_chromium():
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME}

    def log_message(self, *args):
        pass

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")   # each test sees this build, nothing stale
        super().end_headers()


def serve(directory):
    """A threaded static server on a free 127.0.0.1 port; returns (server, base_url)."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(directory)))
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}/"


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
    proc = subprocess.run([sys.executable, "build.py", "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
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


class Watched:
    """A page plus everything it did wrong: console errors, uncaught exceptions, requests off 127.0.0.1."""

    def __init__(self, browser, viewport=None):
        self.errors, self.external = [], []
        self.context = browser.new_context(viewport=viewport or {"width": 1100, "height": 900})
        # context.route also sees the Web Worker's fetches (Pyodide, NumPy, the zip).
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("crash", lambda *_: self.errors.append("page crashed"))

    def _route(self, route):
        url = urllib.parse.urlsplit(route.request.url)
        if url.scheme in ("data", "blob") or url.hostname == "127.0.0.1":
            route.continue_()
        else:
            self.external.append(route.request.url)
            route.abort()

    def _console(self, msg):
        # Errors, and Chromium's warning when history updates come too fast (our hash writes must be debounced).
        if msg.type == "error" or "Throttling navigation" in msg.text:
            self.errors.append(f"console.{msg.type}: {msg.text}")

    def problems(self):
        return {"errors": list(self.errors), "external requests": list(self.external)}

    def assert_clean(self):
        assert not self.errors and not self.external, self.problems()

    def close(self):
        self.context.close()


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


def page_exists(site_dir, path):
    return (site_dir / path).is_file()
