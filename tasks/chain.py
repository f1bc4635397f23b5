"""Running the steps of setup, deploy and rollback: in order, each timed and named to the lock, a summary and a
history entry at the end, and, when one fails or is interrupted, what undoes it: before the switch `discard`, at or
after it `put_back` (the chain's caller says what those are).

A step returns what it changed, None when nothing.
"""
from __future__ import annotations

import contextlib
import getpass
import socket
import time
from datetime import datetime, timezone
from typing import Callable, Optional

from rich.table import Table

from .core import deploy_records as records
from .core.console import print_table
from .core.errors import UserError
from .history import append
from .lock import Lock, LockLost


class Run:
    """One chain on one host: steps timed, the lock told which step runs, the outcome kept for the history."""

    def __init__(self, host, s, action: str, state: Callable[[], dict]):
        self.host, self.s, self.state = host, s, state   # state: what the server serves, for the history
        now = datetime.now(timezone.utc)
        self.outcome = records.Outcome(id=records.entry_id(now), action=action,
                                       by=f"{getpass.getuser()}@{socket.gethostname()}",
                                       started=now.strftime("%Y-%m-%d %H:%M:%S UTC"))
        self.lock: Lock = Lock(None)
        # what undoes a step's change to the server when the run fails before the switch (newest first)
        self.undo: list = []

    def step(self, name: str, body, *args, **kwargs):
        self.host.say(f"== {name}")
        self.lock.step(name)
        started = time.monotonic()
        try:
            change = body(*args, **kwargs)
        except BaseException as failure:   # Ctrl-C and a bug as well: the history says where it stopped
            reason = failure.reason if isinstance(failure, UserError) else \
                "interrupted" if isinstance(failure, KeyboardInterrupt) else f"{type(failure).__name__}: {failure}"
            self.outcome.steps.append(records.Step(name, time.monotonic() - started, failed=reason))
            self.outcome.failed_step, self.outcome.error = name, reason
            if not hasattr(failure, "qms_step"):   # the one line a bug ends in names the step
                failure.qms_step = name
            raise
        self.outcome.steps.append(records.Step(name, time.monotonic() - started, change))
        return change

    def changed(self, *names: str) -> list[str]:
        """The steps (of `names`, default all) that changed something."""
        return [st.name for st in self.outcome.steps if st.change and (not names or st.name in names)]

    def finish(self, result: str) -> None:
        """Record the outcome in the server's history (not under --dry), release the lock, print the summary."""
        self.outcome.result = result
        if not self.host.dry:
            try:
                self.outcome.after = self.state()
                append(self.host, self.s, self.outcome)
            except UserError as failure:
                self.host.say(f"warning: could not write the history: {failure.reason}")
        self.lock.release()
        table = Table(title=f"{self.host.name}: {self.outcome.action} {self.outcome.id}: {result}")
        for column in ("step", "took", "what changed"):
            table.add_column(column)
        for row in records.summary_rows(self.outcome.steps):
            table.add_row(*row)
        print_table(table)
        total = sum(st.seconds for st in self.outcome.steps)
        changed = self.changed()
        if self.host.dry:   # a plan may build here (the build is local), never change the server
            self.host.say(f"{self.outcome.action} {result} in {total:.1f} s: the server was not changed"
                          + ("; the export was built here" if "build" in changed else ""))
            return
        self.host.say(f"{self.outcome.action} {result} in {total:.1f} s: "
                      + (f"changed {', '.join(changed)}" if changed else "nothing changed"))


def run_chain(run: Run, steps, switch_at: str, discard: Callable[[], str],
              put_back: Callable[[], Optional[str]]) -> None:
    """Run (name, body, args...) steps. When one fails or is interrupted before `switch_at` (the step that changes
    what is served), undo what the steps registered and call `discard` (what it removed, said in the error, or
    ''); at or after it, `put_back` (what it put back). Always leaves a history entry and a released lock; the error
    says what the site serves."""
    host = run.host
    switched = False
    try:
        for name, body, *args in steps:
            switched = switched or name == switch_at
            run.step(name, body, *args)
    except BaseException as failure:
        interrupted = not isinstance(failure, Exception)
        reason = failure.reason if isinstance(failure, UserError) else run.outcome.error or str(failure)
        if host.dry:
            run.finish("failed")
            raise
        if isinstance(failure, LockLost):   # the server is the new owner's now: nothing to undo that is ours alone
            run.finish("stopped")
            raise
        if not switched:
            discarded = ""
            with contextlib.suppress(Exception):   # what it half-made must not outlive the run
                discarded = discard()
            for undo in reversed(run.undo):
                with contextlib.suppress(Exception):
                    undo()
            run.finish("interrupted" if interrupted else "failed")
            if interrupted or not isinstance(failure, UserError) or not discarded:
                raise
            raise UserError(f"{reason}; {discarded}") from None
        host.say(f"{run.outcome.failed_step} {'was interrupted' if interrupted else 'failed'}: putting back what was "
                 "served before")
        try:
            restored = put_back()
        except Exception as second:
            run.finish("failed")
            why = second.reason if isinstance(second, UserError) else f"{type(second).__name__}: {second}"
            raise UserError(f"{reason}; putting back failed too: {why}; check the site (fab history, fab smoke)") \
                from None
        run.finish("rolled back")
        if interrupted:
            raise
        raise UserError(f"{reason}; " + (f"put back {restored}" if restored else "nothing had changed")
                        + ": the site serves what it served before") from None
    run.finish("planned" if host.dry else "ok")
