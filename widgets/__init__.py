"""Widget back-ends: one module per widget, pure functions, JSON in and JSON out.

The browser's worker (static/worker.js) answers every `{widget, fn, args}` message with `dispatch`, so the
same entry point runs natively in tests: `dispatch("shapes", "compute", '{"B": 4, ...}')`.
"""

import importlib
import inspect
import json
import math
import re

_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


def _public_function(widget, fn):
    """`widgets.<widget>.<fn>` if it is a public function defined in that module; anything else is refused."""
    if not isinstance(widget, str) or not _NAME.match(widget):
        raise ValueError(f"not a widget name: {widget!r}")
    if not isinstance(fn, str) or not _NAME.match(fn):
        raise AttributeError(f"widgets.{widget} has no public function {fn!r}")
    module = importlib.import_module(f"widgets.{widget}")
    f = getattr(module, fn, None)
    exported = getattr(module, "__all__", None)
    # Only functions the module itself defines (not `np`, not an imported helper) and, if it has one, listed in __all__.
    if not (inspect.isfunction(f) and f.__module__ == module.__name__ and (exported is None or fn in exported)):
        raise AttributeError(f"widgets.{widget} has no public function {fn!r}")
    return f


def to_jsonable(value):
    """NumPy scalars/arrays to Python; non-finite floats to "NaN"/"Infinity"/"-Infinity" (JSON has none;
    the worker's reviver turns these exact strings back into numbers, so a diverged loss stays visible)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "tolist"):                      # numpy arrays and scalars
        return to_jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def dispatch(widget, fn, args_json="{}"):
    """Call `widgets.<widget>.<fn>(**args)`; always return a JSON string `{ok, result}` or `{ok, error}`.

    Never raises: a Python exception becomes `{"ok": false, "error": {"type", "message"}}` for the widget to show.
    """
    try:
        args = json.loads(args_json) if isinstance(args_json, str) else args_json
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise TypeError(f"args must be a JSON object, got {type(args).__name__}")
        result = _public_function(widget, fn)(**args)
        return json.dumps({"ok": True, "result": to_jsonable(result)}, allow_nan=False)
    except Exception as e:  # noqa: BLE001 - every failure goes back to the widget as data
        message = str(e) if str(e) else repr(e)
        if isinstance(e, KeyError):
            message = f"missing key {e.args[0]!r}" if e.args else message
        return json.dumps({"ok": False, "error": {"type": type(e).__name__, "message": message}})
