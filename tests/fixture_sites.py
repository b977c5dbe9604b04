"""Plumbing shared by the tests of build.py and sitebuild/: fixture sites built into temp dirs, and built pages read
back with a parser of their own (independent of sitebuild.links' checker).

Most tests build tests/fixtures/site (copied to a temp dir, with the real templates/ and static/css) with
pyodide="cdn", which is fast; the self-hosted Pyodide copy is built where a test needs it. The builds need
node_modules/ (uPlot, Pyodide): without it they skip locally, and fail under CI=true.
A test module uses a fixture by importing it: `from fixture_sites import built, fixture_site`.
"""
import html
import os
import re
import shutil
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

import pytest

import build
from sitebuild import BuildError
from sitebuild.vendor import PYODIDE_CDN

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "site"
NODE_MODULES = REPO / "node_modules"
CACHE = REPO / ".cache"  # the real wheel cache: downloaded once, shared by every test that needs the wheel
LESSON = "lessons/01-first.md"


def require_node_modules():
    """Skip without node_modules locally; in CI a missing install is a failure, not a skip."""
    if (NODE_MODULES / "pyodide" / "package.json").exists() and (NODE_MODULES / "uplot").is_dir():
        return
    message = "node_modules/ is missing (run `npm ci`): the build vendors Pyodide and uPlot from it"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def make_source(dest: Path) -> Path:
    """A copy of the fixture source tree with the real templates and CSS, ready to mutate."""
    shutil.copytree(FIXTURE, dest)
    shutil.copytree(REPO / "templates", dest / "templates")
    shutil.copytree(REPO / "static" / "css", dest / "static" / "css")
    shutil.copy2(REPO / "static" / "site.js", dest / "static" / "site.js")
    return dest


def run_build(src: Path, out: Path, pyodide="cdn", cache=CACHE, strict=False) -> Path:
    """build() with this checkout's node_modules and wheel cache."""
    return build.build(src, out, pyodide=pyodide, node_modules=NODE_MODULES, cache_dir=cache, strict=strict)


class Page(HTMLParser):
    """Ids, references, scripts and text of one built page (parsed independently of the build's own checker)."""

    def __init__(self, text):
        super().__init__()
        self.ids, self.refs, self.scripts, self.tags, self.text = set(), [], [], [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for key in ("href", "src"):
            if attrs.get(key) is not None:
                self.refs.append((tag, key, attrs[key]))
        if tag == "script":
            self.scripts.append(attrs.get("src"))

    def handle_data(self, data):
        self.text.append(data)

    def html_attrs(self):
        return next(a for t, a in self.tags if t == "html")


def page(site: Path, path: str) -> Page:
    return Page((site / path).read_text(encoding="utf-8"))


def all_pages(site: Path):
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                  if not p.relative_to(site).as_posix().startswith("pyodide/"))


def assert_links_resolve(site: Path, allow_cdn=False):
    """Every relative href/src of every page names a file of the site, and every #anchor an id of its page."""
    parsed = {}

    def ids(target):
        if target not in parsed:
            parsed[target] = page(site, target).ids
        return parsed[target]

    for path in all_pages(site):
        for tag, attr, value in page(site, path).refs:
            parts = urllib.parse.urlsplit(value)
            if parts.scheme or parts.netloc:
                loads = attr == "src" or tag == "link"
                if parts.scheme == "data" or not loads:
                    continue
                assert allow_cdn and value.startswith(PYODIDE_CDN), f"{path}: third-party load {value}"
                continue
            target = path
            if parts.path:
                target = os.path.normpath(os.path.join(os.path.dirname(path), urllib.parse.unquote(parts.path)))
                assert not target.startswith(".."), f"{path}: {value} leaves the site"
                if (site / target).is_dir():
                    target = os.path.join(target, "index.html")
                assert (site / target).is_file(), f"{path}: {value} -> {target} missing"
            if parts.fragment and target.endswith(".html"):
                assert parts.fragment in ids(target), f"{path}: {value}: no such anchor"


def snapshot(site: Path) -> dict:
    """Path -> bytes of every file of a built site (to prove a failed build did not touch it)."""
    return {p.relative_to(site).as_posix(): p.read_bytes() for p in sorted(site.rglob("*")) if p.is_file()}


def listing_text(html_fragment: str) -> str:
    """The source text of a highlighted listing: tags and line-number spans removed, entities decoded."""
    body = re.sub(r'<(span|a) class="ln"[^>]*>\d+</(span|a)>', "", html_fragment)
    body = re.sub(r"<[^>]+>", "", body)
    return html.unescape(body)


def listings(html_text: str):
    """(file, first, last, source text) of every code directive on a page."""
    pattern = re.compile(r'<figure class="listing"><figcaption><a href="[^"]*">([^<]+)</a> · lines (\d+)–(\d+)'
                         r"</figcaption>\s*<div class=\"highlight\"><pre>(.*?)</pre>", re.S)
    return [(m.group(1), int(m.group(2)), int(m.group(3)), listing_text(m.group(4))) for m in pattern.finditer(html_text)]


def edit(src: Path, rel_path: str, old: str, new: str):
    path = src / rel_path
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def line_of(src: Path, rel_path: str, needle: str) -> int:
    return next(i for i, line in enumerate((src / rel_path).read_text().splitlines(), 1) if needle in line)


def assert_no_leftovers(site: Path):
    """No temp or old copy of the site left next to it."""
    assert not list(site.parent.glob(f"{site.name}.tmp-*")), "temp dir left behind"
    assert not list(site.parent.glob(f"{site.name}.old-*"))


def assert_fails_at(built, case, strict=False) -> BuildError:
    """Apply an edit (file, old, new, needle, line, message) to a built fixture source; the rebuild must fail at
    file:line (`line`, or else the line holding `needle`) with `message`, leaving the previous site as it was."""
    src, site, before = built
    file, old, new, needle, line, message = case
    edit(src, file, old, new)
    with pytest.raises(BuildError) as info:
        run_build(src, site, strict=strict)
    err = info.value
    assert err.path == file
    expected_line = line if line is not None else (line_of(src, file, needle) if needle else err.line)
    assert err.line == expected_line, str(err)
    assert message in err.message, str(err)
    assert str(err).startswith(f"{file}:{expected_line}: ")
    assert snapshot(site) == before, "a failed build touched the previous site"
    assert_no_leftovers(site)
    return err


# -- fixtures (import them into a test module by name) ------------------------------------------------------------

@pytest.fixture(scope="module")
def fixture_site(tmp_path_factory):
    """(source, site): the fixture source built once per test module, CDN mode."""
    require_node_modules()
    base = tmp_path_factory.mktemp("fixture")
    src = make_source(base / "src")
    return src, run_build(src, base / "site", pyodide="cdn")


@pytest.fixture
def built(tmp_path):
    """A fresh fixture source and a first good build of it; yields (src, site, snapshot)."""
    require_node_modules()
    src = make_source(tmp_path / "src")
    site = run_build(src, tmp_path / "site")
    return src, site, snapshot(site)


@pytest.fixture(scope="module")
def local_site(tmp_path_factory):
    """The fixture site with self-hosted Pyodide (downloads the NumPy carrier into .cache/ on first use)."""
    require_node_modules()
    base = tmp_path_factory.mktemp("local")
    src = make_source(base / "src")
    return run_build(src, base / "site", pyodide="local")
