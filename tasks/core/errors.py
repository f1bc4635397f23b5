"""User-facing errors: one line that names the problem and the fix, a non-zero exit, no traceback."""
from __future__ import annotations

import sys

from invoke.exceptions import Exit


class UserError(Exit):
    """Raised for anything the user can fix. Invoke prints the message alone and exits with `code`."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(f"error: {message}", code=code)


def install_excepthook() -> None:
    """Turn a settings file that is not valid YAML (raised while Invoke loads it) into one line, not a traceback."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        try:
            import yaml
        except ImportError:  # pragma: no cover - PyYAML comes with Invoke
            yaml = None
        if yaml is not None and isinstance(value, yaml.YAMLError):
            mark = getattr(value, "problem_mark", None)
            where = f"{mark.name} line {mark.line + 1}" if mark else "a settings file"
            problem = getattr(value, "problem", None) or str(value).splitlines()[0]
            print(f"error: {where}: not valid YAML ({problem}): fix the syntax there", file=sys.stderr)
            sys.exit(1)
        previous(kind, value, tb)

    sys.excepthook = hook
