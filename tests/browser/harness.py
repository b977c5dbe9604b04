"""Browser-test harness shared by conftest, the tests and bench/: find Chromium, serve a site, watch a page.

(A uniquely named module: `conftest` is ambiguous between tests/ and tests/browser/.)"""
import functools
import http.server
import os
import shutil
import threading
import urllib.parse

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
MIME = {".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript", ".json": "application/json",
        ".zip": "application/zip", ".whl": "application/zip", ".css": "text/css"}


def find_chromium():
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    cache_control = "no-store"   # tests: each sees this build, nothing stale
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME}

    def log_message(self, *args):
        pass

    def end_headers(self):
        self.send_header("Cache-Control", self.cache_control)
        super().end_headers()


def serve(directory, cache_control="no-store"):
    """A threaded static server on a free 127.0.0.1 port; returns (server, base_url)."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(
        type("Handler", (QuietHandler,), {"cache_control": cache_control}), directory=str(directory)))
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}/"


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


def page_exists(site_dir, path):
    return (site_dir / path).is_file()
