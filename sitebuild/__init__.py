"""The parts of the site builder; build.py is the entry point (command line, gather -> render -> write atomically).

    sources.py   gather: lessons/, gpt_mini/, widgets/, results/ read into plain data (no HTML)
    lessons.py   one lesson body -> HTML: fig() and Jinja, the {code} and {widget} directives, math, Markdown
    pages.py     every page of the site, from templates/
    links.py     the check that every link of the written site resolves and nothing loads from elsewhere
    vendor.py    the runtime the site ships: Pyodide (npm), the sha256-verified NumPy wheel, uPlot (npm)
    serve.py     the development server and the watcher that rebuilds on change

Every problem is a `BuildError` (`path:line: message`). A warning is a `BuildError` handed to a `Warn` callback,
which prints it and goes on, or (`--strict`) raises it.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path


class BuildError(Exception):
    """A problem in the sources, reported as `path:line: message`."""

    def __init__(self, path: str | Path, line: int, message: str):
        self.path, self.line, self.message = str(path), int(line), message
        super().__init__(f"{self.path}:{self.line}: {message}")


Warn = Callable[[BuildError], None]


def report(e: BuildError) -> None:
    """Print a build error the way editors and CI logs can jump to."""
    print(f"build: error: {e}", file=sys.stderr)


def warner(strict: bool) -> Warn:
    """What the build does with a warning: print it and go on, or, strict, fail with it."""
    def warn(problem: BuildError) -> None:
        if strict:
            raise BuildError(problem.path, problem.line, f"{problem.message} (a warning; --strict makes it an error)")
        print(f"build: warning: {problem}", file=sys.stderr)
    return warn
