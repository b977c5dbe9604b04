"""Gather: read lessons, code, widgets and results into plain data. No HTML here.

A widget is a pair, widgets/NAME.py (its maths) + static/widgets/NAME.js (its UI); anything else in those folders
(`widgets/_shared.py` helpers, `static/widgets/*.css`) is not a widget half. A lone half is a warning.
"""
from __future__ import annotations

import ast
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import yaml

from sitebuild import BuildError, Warn

WORDS_PER_MINUTE = 200
LESSON_NAME = re.compile(r"^(\d\d)-([a-z0-9][a-z0-9-]*)\.md$")
WIDGET_NAME = re.compile(r"^[a-z][a-z0-9_]*$")  # a leading "_" marks a shared helper module, not a widget
WATCHED_DIRS = ("lessons", "templates", "static", "gpt_mini", "widgets", "results")
SKIP_NAMES = {"__pycache__", ".DS_Store"}


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


def read_lessons(root: Path, warn: Warn) -> list[Lesson]:
    """Every lessons/NN-slug.md, in order; duplicate numbers are an error, a misnamed file a warning."""
    lessons, seen = [], {}
    for path in sorted((root / "lessons").glob("*.md")):
        if not LESSON_NAME.match(path.name):
            warn(BuildError(rel(path, root), 1, "not a lesson name (lessons are named NN-slug.md), so it is ignored"))
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


def widget_halves(root: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """(name -> widgets/NAME.py, name -> static/widgets/NAME.js); `_helper.py`, `__init__.py`, CSS are not halves."""
    pys = {p.stem: p for p in (root / "widgets").glob("*.py") if WIDGET_NAME.match(p.stem)}
    jss = {p.stem: p for p in (root / "static" / "widgets").glob("*.js") if WIDGET_NAME.match(p.stem)}
    return pys, jss


def read_widgets(root: Path, warn: Warn) -> dict[str, Widget]:
    """Widgets that have both halves; a lone half is a warning (whether or not a lesson uses it) and left out."""
    pys, jss = widget_halves(root)
    for name in sorted(set(pys) ^ set(jss)):
        half, missing = (pys[name], f"static/widgets/{name}.js") if name in pys else (jss[name], f"widgets/{name}.py")
        warn(BuildError(rel(half, root), 1, f"widget '{name}' has no {missing} yet, so it is left out"))
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


def gather(root: Path, warn: Warn) -> Sources:
    """Read all inputs of the build."""
    return Sources(root=root, lessons=read_lessons(root, warn), code=read_code(root),
                   widgets=read_widgets(root, warn), results=read_results(root))

