"""Render every page of the site from templates/: index, lessons, code pages, widget pages.

Each page is (site path -> HTML); templates get `root` (the relative path to the site root), so every link is
relative and the site works under any sub-path.
"""
from __future__ import annotations

import ast
from pathlib import Path

import jinja2

from sitebuild import BuildError, Warn
from sitebuild.lessons import code_page_name, highlight_lines, py_source, render_lesson_body, widget_div
from sitebuild.sources import Sources, front_matter_line, rel
from sitebuild.vendor import PYODIDE_CDN, PYODIDE_LOCAL


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


def render_pages(src: Sources, pyodide: str, warn: Warn) -> dict[str, str]:
    """Every HTML page of the site, keyed by site path."""
    env = template_env(src.root)
    env.filters["reading_time"] = reading_time
    pyodide_url = PYODIDE_CDN if pyodide == "cdn" else PYODIDE_LOCAL
    for lesson in src.lessons:
        if not lesson.draft:
            render_lesson_body(lesson, src, warn)
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
