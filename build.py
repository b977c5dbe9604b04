#!/usr/bin/env python3
"""Build the Mini GPT lessons into a static site: gather -> render -> write, atomically.

    python build.py                    # lessons/*.md -> site/ (self-hosted Pyodide + NumPy)
    python build.py --out DIR          # somewhere else
    python build.py --pyodide-cdn      # load Pyodide from jsDelivr instead of shipping it
    python build.py --strict           # every warning is an error (CI builds this way)
    python build.py --serve [--port N] # build, serve on 127.0.0.1, rebuild on change

Everything a page needs is resolved at build time (math -> MathML, code -> Pygments HTML, figures -> numbers
from results/*.json), so the output is plain files that work from any static host, under any sub-path, offline.
Any problem is a `BuildError` printed as `path:line: message`; a failed build never touches the previous site.
The parts live in sitebuild/ (sources, lessons, pages, links, vendor, serve); this file runs them in order.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from sitebuild import BuildError, report, warner
from sitebuild.lessons import pygments_css
from sitebuild.links import check_links
from sitebuild.pages import render_pages
from sitebuild.serve import serve
from sitebuild.sources import SKIP_NAMES, WATCHED_DIRS, Sources, gather
from sitebuild.vendor import PYODIDE_CDN, check_node_modules, copy_pyodide, copy_uplot

ROOT = Path(__file__).resolve().parent
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps keep gpt_mini.zip byte-identical across builds


# ----------------------------------------------------------------------------------------------------------------
# Write: files into a fresh directory, then check every link, then swap it in.
# ----------------------------------------------------------------------------------------------------------------

def skipped(name: str) -> bool:
    """A cache, bytecode or dot-file name that never ships."""
    return name in SKIP_NAMES or name.endswith(".pyc") or name.startswith(".")


def copy_tree(src: Path, dst: Path) -> None:
    """copytree without caches and editor droppings."""
    shutil.copytree(src, dst, dirs_exist_ok=True, ignore=lambda d, names: [n for n in names if skipped(n)])


def pack_python(root: Path, dest: Path) -> None:
    """gpt_mini/ and widgets/ -> one deterministic zip (sorted entries, fixed timestamps and modes)."""
    files = []
    for top in ("gpt_mini", "widgets"):
        base = root / top
        if base.is_dir():
            files += [p for p in base.rglob("*") if p.is_file() and not any(map(skipped, p.relative_to(root).parts))]
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w") as zf:
        for p in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
            info = zipfile.ZipInfo(p.relative_to(root).as_posix(), date_time=ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, p.read_bytes(), compresslevel=9)


def write_site(out: Path, pages: dict[str, str], src: Sources, node_modules: Path, cache: Path, pyodide: str) -> None:
    """Write pages and every asset into `out` (an empty directory)."""
    for site_path, text in pages.items():
        target = out / site_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    if (src.root / "static").is_dir():
        copy_tree(src.root / "static", out / "static")
    (out / "static" / "css").mkdir(parents=True, exist_ok=True)
    (out / "static" / "css" / "code.css").write_text(pygments_css(), encoding="utf-8")
    copy_uplot(node_modules, out / "static" / "vendor" / "uplot")
    pack_python(src.root, out / "py" / "gpt_mini.zip")
    for folder in ("results", "checkpoints"):
        if (src.root / folder).is_dir() and any((src.root / folder).iterdir()):
            copy_tree(src.root / folder, out / folder)
    if pyodide == "local":
        copy_pyodide(node_modules, cache, out / "pyodide")
    (out / ".nojekyll").write_text("")  # GitHub Pages: serve files as they are, no Jekyll pass


def guard_out_dir(out: Path, root: Path) -> None:
    """Refuse output paths the swap would destroy: the sources, or a directory that is not a built site."""
    if out == root or root.is_relative_to(out) or any(out.is_relative_to(root / d) for d in WATCHED_DIRS):
        raise BuildError(out, 1, "refusing to write the site over the sources")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / ".nojekyll").exists())):
        raise BuildError(out, 1, "exists and is not a site this script built; refusing to replace it")


def swap_in(tmp: Path, out: Path) -> None:
    """Replace `out` with `tmp` by renames, so readers never see half a site."""
    old = None
    if out.exists():
        old = out.with_name(f"{out.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        os.rename(out, old)
    os.rename(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build(src_root: str | Path = ROOT, out_dir: str | Path | None = None, pyodide: str = "local",
          node_modules: str | Path | None = None, cache_dir: str | Path | None = None, strict: bool = False) -> Path:
    """Build the site from `src_root` into `out_dir` (default <src_root>/site); return the output path.

    A warning is printed, or with `strict` raised as a BuildError before anything is written."""
    if pyodide not in ("local", "cdn"):
        raise ValueError(f"pyodide must be 'local' or 'cdn', not {pyodide!r}")
    root = Path(src_root).resolve()
    out = Path(out_dir).resolve() if out_dir else root / "site"
    node_modules = Path(node_modules).resolve() if node_modules else root / "node_modules"
    cache = Path(cache_dir).resolve() if cache_dir else root / ".cache"
    guard_out_dir(out, root)
    check_node_modules(node_modules, need_pyodide=pyodide == "local")
    warn = warner(strict)
    src = gather(root, warn)
    pages = render_pages(src, pyodide, warn)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{out.name}.tmp-", dir=out.parent))
    try:
        write_site(tmp, pages, src, node_modules, cache, pyodide)
        check_links(tmp, src, pyodide, site_name=out.name)
        tmp.chmod(0o755)  # mkdtemp makes it 0700; static hosts and other users need to read it
        swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=str(ROOT), help="source root holding lessons/, templates/, ... (default: here)")
    ap.add_argument("--out", default=None, help="output directory (default: <src>/site)")
    ap.add_argument("--pyodide-cdn", action="store_true", help=f"load Pyodide from {PYODIDE_CDN} (not self-hosted)")
    ap.add_argument("--strict", action="store_true", help="treat every warning as an error (CI builds this way)")
    ap.add_argument("--serve", action="store_true", help="serve on 127.0.0.1 and rebuild on change")
    ap.add_argument("--port", type=int, default=8000)
    args = ap.parse_args(argv)
    src = Path(args.src).resolve()
    out = Path(args.out).resolve() if args.out else src / "site"
    pyodide = "cdn" if args.pyodide_cdn else "local"

    def build_once() -> Path:
        # node_modules and the wheel cache stay those of this checkout, whatever --src says
        return build(src, out, pyodide=pyodide, node_modules=ROOT / "node_modules", cache_dir=ROOT / ".cache",
                     strict=args.strict)

    t0 = time.monotonic()
    try:
        build_once()
    except BuildError as e:
        report(e)
        if not args.serve or not out.exists():
            return 1
        print("build: serving the previous site", file=sys.stderr)
    else:
        print(f"build: wrote {out} in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    if args.serve:
        try:
            serve(src, out, args.port, build_once)
        except BuildError as e:
            report(e)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
