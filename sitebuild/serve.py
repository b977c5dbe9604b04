"""The development server (`python build.py --serve`): serve the built site on 127.0.0.1 and rebuild it in a
thread when a source changes; a failed rebuild is reported and the previous site stays served.
"""
from __future__ import annotations

import functools
import http.server
import sys
import threading
import time
from pathlib import Path

from sitebuild import BuildError, report
from sitebuild.sources import SKIP_NAMES, WATCHED_DIRS


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with the MIME types Pyodide needs, never cached (so a rebuild shows at once)."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript",
                      ".json": "application/json", ".whl": "application/octet-stream", ".zip": "application/zip",
                      ".npz": "application/octet-stream", ".map": "application/json", ".css": "text/css",
                      ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml"}

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, fmt, *args):
        if not str(args[1] if len(args) > 1 else "").startswith(("2", "3")):  # only failed requests
            super().log_message(fmt, *args)


def source_state(root: Path) -> dict[str, tuple[int, int]]:
    """(mtime, size) of every file the build reads, to notice edits, additions and deletions."""
    state = {}
    for d in WATCHED_DIRS:
        for p in (root / d).rglob("*") if (root / d).is_dir() else ():
            if p.is_file() and not (set(p.parts) & SKIP_NAMES):
                st = p.stat()
                state[str(p)] = (st.st_mtime_ns, st.st_size)
    return state


def watch(root: Path, rebuild, interval: float = 1.0, stop: threading.Event | None = None) -> None:
    """Poll the sources; call rebuild() after a change settles."""
    stop = stop or threading.Event()
    state = source_state(root)
    while not stop.wait(interval):
        now = source_state(root)
        if now != state:
            time.sleep(0.3)  # let an editor finish writing
            state = source_state(root)
            rebuild()


def serve(root: Path, out: Path, port: int, build_once) -> None:
    """Serve `out` on 127.0.0.1:port and rebuild in a thread when sources change."""
    def rebuild():
        t0 = time.monotonic()
        try:
            build_once()
            print(f"build: rebuilt in {time.monotonic() - t0:.1f}s", file=sys.stderr)
        except BuildError as e:
            report(e)
            print("build: still serving the previous site", file=sys.stderr)

    handler = functools.partial(SiteHandler, directory=str(out))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as e:
        raise BuildError("build.py", 1, f"cannot listen on 127.0.0.1:{port}: {e.strerror}; try --port") from None
    threading.Thread(target=watch, args=(root, rebuild), daemon=True).start()
    print(f"build: serving {out} at http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
