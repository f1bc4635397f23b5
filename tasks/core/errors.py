"""User-facing errors: one line that names the problem and the fix, a non-zero exit, no traceback."""
from __future__ import annotations

import logging
import sys
import time
import traceback
from pathlib import Path

from invoke.exceptions import Exit


class UserError(Exit):
    """Raised for anything the user can fix. Invoke prints the message alone and exits with `code`."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(f"error: {message}", code=code)
        self.reason = message   # without the "error: " Invoke prints


def startup_error_line(error: BaseException) -> str | None:
    """The one-line message for a mistake Invoke/Fabric raise while reading files, before any task runs."""
    if any(cls.__name__ == "YAMLError" for cls in type(error).__mro__):   # Invoke vendors its own PyYAML
        mark = getattr(error, "problem_mark", None)
        where = f"{mark.name} line {mark.line + 1}" if mark else "a settings file"
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        return f"error: {where}: not valid YAML ({problem}): fix the syntax there"
    if isinstance(error, FileNotFoundError) and error.filename:       # fab -S with a path that does not exist
        return f"error: {error.filename} does not exist: check the path (for the stand-in: scripts/standin up)"
    return None


ERROR_LOGS = Path.home() / ".cache" / "qms-deploy" / "errors"


def report_unexpected(kind, value, tb, logs: Path = ERROR_LOGS, mask=lambda text: text) -> str:
    """A bug, not a user mistake: its traceback into a file of `logs` (masked as the tool's output is), and the one
    line that names the step it happened in and that file."""
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / f"{time.strftime('%Y%m%d-%H%M%S')}-{kind.__name__}.log"
    path.write_text(mask("".join(traceback.format_exception(kind, value, tb))), encoding="utf-8")
    step = getattr(value, "qms_step", "")
    return (f"error: unexpected {kind.__name__}{f' in step {step}' if step else ''}: "
            f"{mask(str(value)).splitlines()[0] if str(value) else 'no message'} (a bug in qms-deploy: the traceback "
            f"is in {path}; --debug shows it here)")


def install_excepthook() -> None:
    """These errors escape Invoke's own handling, so they would end in a traceback: print one line instead (the
    traceback itself with --debug)."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        line = startup_error_line(value)
        if line is None and (issubclass(kind, (KeyboardInterrupt, SystemExit)) or "--debug" in sys.argv
                             or "-d" in sys.argv):
            return previous(kind, value, tb)
        if line is None:
            masker = getattr(sys.stderr, "masker", None)
            line = report_unexpected(kind, value, tb, mask=masker.mask if masker else (lambda text: text))
        print(line, file=sys.stderr)
        sys.exit(1)

    sys.excepthook = hook


def quiet_library_logs() -> None:
    """paramiko logs a broken connection to stderr by itself (through logging's last-resort handler) beside the
    one line the tool prints about it: keep its records to itself."""
    logging.getLogger("paramiko").addHandler(logging.NullHandler())
