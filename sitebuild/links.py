"""Check the written site: every relative href/src resolves to a built file (and #anchor to an id there), nothing
points outside the site or by absolute path, and nothing loads from a third party (save Pyodide's CDN when asked).

A problem in a lesson's own text is reported at the lesson's line; anything else at the built page's line.
"""
from __future__ import annotations

import posixpath
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

from sitebuild import BuildError
from sitebuild.lessons import locate
from sitebuild.sources import Sources
from sitebuild.vendor import PYODIDE_CDN


class LinkScan(HTMLParser):
    """Ids and href/src references of one HTML page, with their line numbers."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.refs: list[tuple[str, str, str, int]] = []  # (tag, attr, value, line)

    def handle_starttag(self, tag, attrs):
        line = self.getpos()[0]
        for attr, value in attrs:
            if attr == "id" and value:
                self.ids.add(value)
            elif attr in ("href", "src") and value is not None:
                self.refs.append((tag, attr, value, line))

    handle_startendtag = handle_starttag

    @classmethod
    def of(cls, path: Path) -> "LinkScan":
        """Scan one file."""
        p = cls()
        p.feed(path.read_text(encoding="utf-8"))
        p.close()
        return p


def check_links(out: Path, src: Sources, pyodide: str, site_name: str = "site") -> None:
    """Every relative href/src must resolve to a built file (and #anchor to an id there); no third-party loads."""
    scans: dict[str, LinkScan] = {}

    def scan(site_path: str) -> LinkScan:
        if site_path not in scans:
            scans[site_path] = LinkScan.of(out / site_path)
        return scans[site_path]

    lessons = {les.url: les for les in src.lessons}
    for page in sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html")
                       if not p.relative_to(out).as_posix().startswith("pyodide/")):
        for tag, attr, value, line in scan(page).refs:
            problem = link_problem(out, page, tag, attr, value, scan, pyodide)
            if problem:
                lesson = lessons.get(page)
                if lesson is not None and locate(lesson, value, 0) >= lesson.body_line:
                    raise BuildError(lesson.rel, locate(lesson, value, 0), problem)
                raise BuildError(f"{site_name}/{page}", line, problem)


def link_problem(out: Path, page: str, tag: str, attr: str, value: str, scan, pyodide: str) -> str | None:
    """What is wrong with one reference on a page, or None."""
    parts = urllib.parse.urlsplit(value)
    loads = attr == "src" or tag == "link"  # resources the browser fetches by itself, not links a reader follows
    if parts.scheme in ("mailto", "tel") or (parts.scheme == "data" and loads):
        return None
    if parts.scheme or parts.netloc:
        if loads and not (pyodide == "cdn" and value.startswith(PYODIDE_CDN)):
            return f"third-party request {value!r} (the site must load everything from itself)"
        return None
    if parts.path.startswith("/"):
        return f"absolute path {value!r} breaks when the site lives under a sub-path; use a relative link"
    target = page
    if parts.path:
        target = posixpath.normpath(posixpath.join(posixpath.dirname(page), urllib.parse.unquote(parts.path)))
        if target == ".." or target.startswith("../"):
            return f"link {value!r} points outside the site"
        if (out / target).is_dir():
            target = posixpath.join(target, "index.html")
        if not (out / target).is_file():
            return f"broken link {value!r}: {target} is not in the built site"
    if parts.fragment and target.endswith(".html"):
        fragment = urllib.parse.unquote(parts.fragment)
        if fragment not in scan(target).ids:
            return f"broken link {value!r}: no id '{fragment}' in {target}"
    return None
