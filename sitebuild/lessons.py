"""Render a lesson body to HTML: a Jinja pass (fig(), results), then the directives, then math, then Markdown.

    {{ fig("00_pretrain", "final.val_loss", ".3f") }}   a number from results/<stage>.json
    ```{code}                                           a highlighted listing of gpt_mini code (symbol: or lines:)
    ```{widget}                                         the root element the widget runtime boots
    $...$ and $$...$$                                   MathML, converted at build time

Every problem is a BuildError at the lesson's file line.
"""
from __future__ import annotations

import ast
import dataclasses
import html
import json
import posixpath
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jinja2
import markdown
from latex2mathml.converter import convert as latex_to_mathml
from markdown.extensions.toc import slugify
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from sitebuild import BuildError, Warn
from sitebuild.sources import Lesson, Sources, front_matter_line, parse_yaml

WIDGET_FALLBACK = ("This widget runs Python in your browser; it needs JavaScript and WebAssembly. "
                   "The text around it stands on its own.")


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


def pygments_css() -> str:
    """Token colours for light and dark schemes (backgrounds come from --code-bg in site.css)."""
    light = HtmlFormatter(style="default").get_style_defs(".highlight")
    dark = HtmlFormatter(style="github-dark").get_style_defs(".highlight")
    strip = re.compile(r"^(pre \{|td\.linenos|span\.linenos|\.highlight \.hll|\.highlight \{).*$", re.M)
    light, dark = strip.sub("", light), strip.sub("", dark)
    return ("/* generated by build.py from Pygments styles 'default' and 'github-dark' */\n" + light +
            "\n@media (prefers-color-scheme: dark) {\n" + dark + "\n}\n")


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


def render_lesson_body(lesson: Lesson, src: Sources, warn: Warn) -> None:
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
    for name in sorted(set(lesson.used_widgets) ^ set(lesson.widgets)):
        side = "embedded but not in front matter 'widgets'" if name in used else "in front matter but not embedded"
        warn(BuildError(lesson.rel, front_matter_line(lesson.source, "widgets"), f"widget '{name}' is {side}"))


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

