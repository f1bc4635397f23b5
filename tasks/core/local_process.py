"""Programs the tool runs on this machine (npm, and the `next build` it starts) die with the command, however the
command ends, and one app's build runs once at a time.

- A child runs in a process group of its own, so that a Ctrl-C at the terminal reaches this process alone, and a
  guard process beside it holds the read end of a pipe only this process writes. The end of the pipe without the
  all-clear byte (Ctrl-C or an error here, or this process killed: SIGKILL, a crash) makes the guard end the whole
  group, npm's grandchildren included, which a plain subprocess.run leaves running.
- SIGTERM (`kill`, a CI job's timeout, systemd) interrupts the tool as Ctrl-C does: the chains put back or discard
  what they began, record "interrupted" and free the lock, instead of dying mid-step.
- `exclusive` takes an flock on a file under the user's cache dir, one per app folder; the holder's description
  is in the file, so the refusal names the running build.

Windows has neither process groups nor flock in this form: there the child runs plainly (as before) and the lock
uses msvcrt's byte lock.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .errors import UserError

POSIX = os.name == "posix"
GRACE_SECONDS = 5   # between SIGTERM and SIGKILL for a group that does not end

# The guard: waits for one byte (the all-clear) or end-of-file, and on the latter ends the group: SIGTERM, then
# SIGKILL to what is left after the grace period.
GUARD = r"""
import os, signal, sys, time
group = int(sys.argv[1])
if not sys.stdin.buffer.read(1):
    deadline = time.monotonic() + float(sys.argv[2])
    try:
        os.killpg(group, signal.SIGTERM)
        while time.monotonic() < deadline:
            time.sleep(0.1)
            os.killpg(group, 0)
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass
"""


def terminate_as_interrupt() -> None:
    """From now on SIGTERM raises KeyboardInterrupt in the main thread, as Ctrl-C does."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    if POSIX:
        signal.signal(signal.SIGTERM, interrupt)


def run_grouped(args: list[str], cwd: Path, env: dict) -> int:
    """Run `args` to the end and return its exit code; whatever ends this process first ends the child's whole
    process group too."""
    if not POSIX:
        return subprocess.run(args, cwd=cwd, env=env).returncode
    child = subprocess.Popen(args, cwd=cwd, env=env, start_new_session=True)
    read, write = os.pipe()   # neither end is inherited by the child (PEP 446)
    try:
        guard = subprocess.Popen([sys.executable, "-c", GUARD, str(child.pid), str(GRACE_SECONDS)], stdin=read,
                                 start_new_session=True)   # a Ctrl-C at the terminal must not reach the guard
    finally:
        os.close(read)
    try:
        code = child.wait()
    except BaseException:   # Ctrl-C, or anything else that ends the command: no all-clear, the guard ends the group
        os.close(write)
        child.wait()
        guard.wait()
        raise
    os.write(write, b"k")   # the all-clear (the child is reaped: its group id may be another's soon)
    os.close(write)
    guard.wait()
    return code


def lock_path(folder: Path) -> Path:
    """One lock file per app folder, under the user's cache dir (the app's folder stays as git has it)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qms-deploy"
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return base / f"build-{key}.lock"


@contextlib.contextmanager
def exclusive(folder: Path, what: str):
    """Hold the lock of `folder` for `what` (e.g. "the build of <folder>"), or refuse naming who holds it."""
    path = lock_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        running = ""
        if not _try_lock(f):
            f.seek(0)
            with contextlib.suppress(OSError):   # Windows cannot read a locked byte
                running = f.read().decode(errors="replace").strip()
            running = running or "another process"
            raise UserError(f"{what} is running already ({running}): wait for it to finish, or stop it")
        f.seek(0)
        f.truncate()
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
        f.write(f"pid {os.getpid()}: {command}, since {time.strftime('%H:%M:%S')}".encode())
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()
            f.flush()


def _try_lock(f) -> bool:
    """A non-blocking exclusive lock on open file `f`, released when the process ends, however it ends."""
    try:
        if POSIX:
            import fcntl
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            import msvcrt
            f.seek(0)
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True
