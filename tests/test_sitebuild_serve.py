"""Tests for sitebuild/serve.py: the development server's MIME types and no-store caching, and the watcher."""
import functools
import http.client
import http.server
import threading
import time

from fixture_sites import local_site  # noqa: F401
from sitebuild.serve import SiteHandler, watch
from sitebuild.vendor import NUMPY_WHEEL


def test_server_mime_types_and_no_store(local_site):
    handler = functools.partial(SiteHandler, directory=str(local_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        expected = {"/pyodide/pyodide.asm.wasm": "application/wasm", "/pyodide/pyodide.mjs": "text/javascript",
                    "/static/runtime.js": "text/javascript", "/py/gpt_mini.zip": "application/zip",
                    "/pyodide/pyodide-lock.json": "application/json",
                    f"/pyodide/{NUMPY_WHEEL}": "application/octet-stream"}
        for path, mime in expected.items():
            conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
            conn.request("HEAD", path)
            resp = conn.getresponse()
            assert resp.status == 200, path
            assert resp.getheader("Content-Type") == mime, path
            assert resp.getheader("Cache-Control") == "no-store"
            conn.close()
    finally:
        server.shutdown()
        server.server_close()


def test_watch_rebuilds_on_change(tmp_path):
    (tmp_path / "lessons").mkdir()
    (tmp_path / "lessons" / "01-a.md").write_text("x")
    calls, stop = [], threading.Event()

    def rebuild():
        calls.append(1)
        stop.set()

    t = threading.Thread(target=watch, args=(tmp_path, rebuild, 0.05, stop), daemon=True)
    t.start()
    time.sleep(0.2)
    (tmp_path / "lessons" / "02-b.md").write_text("new file")
    t.join(timeout=5)
    assert calls == [1]
