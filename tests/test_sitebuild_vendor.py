"""Tests for sitebuild/vendor.py: Pyodide's core files copied from node_modules, the NumPy wheel verified against
pyodide-lock.json (a tampered wheel or a lock naming another wheel is refused), nothing shipped in CDN mode."""
import hashlib
import json

import pytest

import build
from fixture_sites import (CACHE, NODE_MODULES, assert_links_resolve, built, fixture_site, local_site,  # noqa: F401
                           make_source, page, require_node_modules, run_build)
from sitebuild import BuildError
from sitebuild.vendor import PYODIDE_FILES, numpy_lock_entry, verified_numpy_wheel


def lock():
    return json.loads((NODE_MODULES / "pyodide" / "pyodide-lock.json").read_text())


def test_cdn_build_ships_no_pyodide(fixture_site):
    _, site = fixture_site
    assert not (site / "pyodide").exists()
    assert not list(site.rglob("*.whl"))
    assert page(site, "index.html").html_attrs()["data-pyodide"] == "https://cdn.jsdelivr.net/pyodide/v0.27.7/full/"


def test_pyodide_folder_holds_core_and_verified_wheel(local_site):
    pyodide = local_site / "pyodide"
    assert json.loads((NODE_MODULES / "pyodide" / "package.json").read_text())["version"] == "0.27.7"
    for name in PYODIDE_FILES:
        assert (pyodide / name).read_bytes() == (NODE_MODULES / "pyodide" / name).read_bytes(), name
    entry = lock()["packages"]["numpy"]
    wheel = pyodide / entry["file_name"]
    assert wheel.name == "numpy-2.0.2-cp312-cp312-pyodide_2024_0_wasm32.whl"
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == entry["sha256"]
    assert page(local_site, "index.html").html_attrs()["data-pyodide"] == "./pyodide/"
    assert page(local_site, "widgets/dial.html").html_attrs()["data-pyodide"] == "./pyodide/"
    assert_links_resolve(local_site, allow_cdn=False)


def test_tampered_wheel_is_refused(local_site, tmp_path):
    entry = lock()["packages"]["numpy"]
    cache = tmp_path / "cache"
    (cache / "pyodide").mkdir(parents=True)
    good = (local_site / "pyodide" / entry["file_name"]).read_bytes()
    tampered = bytearray(good)
    tampered[len(tampered) // 2] ^= 0xFF
    (cache / "pyodide" / entry["file_name"]).write_bytes(bytes(tampered))
    with pytest.raises(BuildError, match="refusing to ship it") as info:
        verified_numpy_wheel(NODE_MODULES, cache)
    assert entry["sha256"] in str(info.value)
    # and through a whole build: refused, nothing half-written left behind
    src = make_source(tmp_path / "src")
    with pytest.raises(BuildError, match="does not match pyodide-lock.json"):
        run_build(src, tmp_path / "site", pyodide="local", cache=cache)
    assert not (tmp_path / "site").exists() and not list(tmp_path.glob("site.tmp-*"))


def test_lock_naming_another_wheel_is_refused(tmp_path):
    require_node_modules()
    fake = tmp_path / "node_modules" / "pyodide"
    fake.mkdir(parents=True)
    data = lock()
    data["packages"]["numpy"]["file_name"] = "numpy-9.9.9-cp312-cp312-pyodide_2024_0_wasm32.whl"
    (fake / "pyodide-lock.json").write_text(json.dumps(data))
    with pytest.raises(BuildError, match="does not name numpy-2.0.2"):
        numpy_lock_entry(tmp_path / "node_modules")


def test_missing_node_modules_says_npm_ci(built, tmp_path):
    src, site, _ = built
    with pytest.raises(BuildError, match="npm ci"):
        build.build(src, site, pyodide="cdn", node_modules=tmp_path / "nothing", cache_dir=CACHE)
