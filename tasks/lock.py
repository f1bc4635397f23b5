"""One command that changes the server at a time (PEERS.md: Capistrano and Deployer leave stale locks that only a
human can judge). The lock is held by a process on the command's own SSH connection (tasks/remote/lock_agent.py):
when a deploy is killed, its lock is recognised as stale at once and the next deploy takes it over, saying whose it
was and at which step it stopped. `unlock` removes a lock by hand.

Every task declares how it stands to the lock, and a unit test holds every task to it: `locked` (it changes the
server: it runs holding the lock), `read_only`, or `own_lock` (the chains take it per host themselves, unlock
manages it)."""
import functools
import getpass
import json
import os
import posixpath
import socket
import time
from datetime import datetime, timezone

import paramiko
from invoke import Collection, task

from . import remote
from .core.deploy_records import describe_owner, lock_owner
from .core.errors import UserError
from .core.runtime import host_of, settings_of


LOCK_POLL = 2.0   # seconds between two tries of a waiting deploy


def lock_dir(s) -> str:
    return posixpath.join(s.app_root, ".deploy", "lock")


class LockLost(UserError):
    """The lock is no longer this run's (unlock --force, then another took it): the run stops and changes nothing
    more, not even to undo (what it would put back is the new owner's to decide)."""


class Lock:
    def __init__(self, held, host=None):
        self.held, self.host = held, host

    def step(self, name: str) -> None:
        """Record the step in the lock; refused when the lock is no longer ours (then this run stops here)."""
        if not self.held:
            return
        try:
            reply = self.held.ask(f"step {name}")
        except (OSError, EOFError, paramiko.SSHException):
            return   # a connection that broke says so in the step's own command, with the step's name
        answer = remote.parse_answer(reply) if reply else {}
        if "lost" in answer:
            self.held.close()
            self.held = None
            raise LockLost(f"[{self.host.name}] this run lost the deploy lock before step {name}: someone ran unlock "
                           f"--force{lost_to(answer['lost'])}; it stopped and changed nothing more (check history)")
        if answer.get("warning"):
            self.host.say(f"warning: {answer['warning']} (the lock stays held)")

    def release(self) -> None:
        if self.held:
            reply = self.held.close("release")
            self.held = None
            answer = remote.parse_answer(reply) if reply else {}
            if "lost" in answer:
                self.host.say(f"the deploy lock was no longer this run's{lost_to(answer['lost'])}: left it as it is")


def lost_to(owner) -> str:
    return f", and {describe_owner(owner)} holds it now" if owner else ""


def status(host, s) -> dict:
    return remote.parse_answer(host.probe(remote.command("lock_agent", "status", lock_dir(s))).stdout)


def take(host, s, action: str, wait: float = 0) -> Lock:
    """The server's deploy lock, or a one-line refusal naming who holds it; with `wait`, wait up to that many
    seconds for it first (PEERS.md: people want to queue behind a running deploy; only deploy offers --wait).
    Under --dry only reports."""
    if host.dry:
        found = status(host, s)
        if found.get("alive"):
            host.say(f"lock: held by {describe_owner(found['owner'])}: a deploy now would be refused")
        else:
            host.say("lock: free" + (" (a stale one would be taken over)" if found.get("locked") else ""))
        return Lock(None)
    owner = lock_owner(action, getpass.getuser(), socket.gethostname(), os.getpid(), datetime.now(timezone.utc))
    if action not in CHAINS:
        owner["step"] = action   # a task is one step
    deadline, waiting = time.monotonic() + wait, False
    while True:
        held = host.hold(remote.command("lock_agent", "hold", lock_dir(s), json.dumps(owner)))
        answer = remote.parse_answer(held.first_output)
        if "taken" in answer:
            break
        held.close()
        if "held" not in answer:
            raise UserError(f"[{host.name}] cannot take the deploy lock: {answer.get('error')}")
        if time.monotonic() >= deadline:
            raise UserError(f"[{host.name}] another {describe_owner(answer['held'])} holds the deploy lock: wait for "
                            f"it to finish{', or deploy --wait SECONDS' if action == 'deploy' else ''} (if it is "
                            "stuck: fab unlock --force)")
        if not waiting:
            host.say(f"waiting up to {wait:g} s for the deploy lock, held by {describe_owner(answer['held'])}")
            waiting = True
        time.sleep(LOCK_POLL)
    if answer.get("stale") is not None:
        host.say(f"taking over a stale lock: {describe_owner(answer['stale'])} was interrupted (its connection is "
                 "gone); check `history` and the site")
    return Lock(held, host)


CHAINS = ("setup", "deploy", "upload", "rollback")   # the actions whose lock records step after step


def locked(read_only_with: str = ""):
    """Declare a task that changes the server: it runs holding the deploy lock, and is refused with a one-line error
    naming the holder while a deploy or another such task holds it. `read_only_with` names the task's flag that
    makes it change nothing (then it runs without the lock). A server without .deploy yet (before prepare) has no
    lock to take: no deploy can run there."""
    def declare(body):
        action = body.__name__[:-len("_task")] if body.__name__.endswith("_task") else body.__name__
        action = action.replace("_", "-")

        @functools.wraps(body)
        def holding(c, *args, **kwargs):
            if read_only_with and kwargs.get(read_only_with):
                return body(c, *args, **kwargs)
            s = settings_of(c)
            host = host_of(c, s)
            if host.stat(posixpath.dirname(lock_dir(s))) is None:
                return body(c, *args, **kwargs)
            held = take(host, s, action)
            try:
                return body(c, *args, **kwargs)
            finally:
                held.release()
        holding.qms_lock = "locked"
        return holding
    return declare


def read_only(body):
    """Declare a task that does not change the server (it runs beside a deploy, without the lock)."""
    body.qms_lock = "read-only"
    return body


def own_lock(body):
    """Declare a task that handles the lock itself: the chains take it per host (for --wait, the steps and the put
    back), unlock removes it."""
    body.qms_lock = "own"
    return body


@task(help={"force": "remove the lock even though its deploy still runs (only if that deploy is known to be hung)"})
@own_lock
def unlock(c, force=False):
    """Remove the deploy lock left by an interrupted deploy.

    Remove the server's deploy lock when the deploy that took it is gone (--force: even when it still runs).
    """
    s = settings_of(c)
    host = host_of(c, s)
    found = status(host, s)
    if not found.get("locked"):
        host.say("no deploy lock: nothing to do")
        return
    refusal = (f"[{host.name}] the lock belongs to a running {{}}: wait for it, or unlock --force if it is hung")
    if found.get("alive") and not force:
        raise UserError(refusal.format(describe_owner(found["owner"])))
    if host.dry:
        host.say(f"would remove the lock of {describe_owner(found['owner'])}")
        return
    answer = remote.parse_answer(host.run(remote.command("lock_agent", "unlock", lock_dir(s),
                                                         "force" if force else "")).stdout)
    if "held" in answer:   # taken again since the status above
        raise UserError(refusal.format(describe_owner(answer["held"])))
    host.say(f"removed the lock of {describe_owner(answer.get('removed'))}"
             + (": if it still runs, it stops at its next step (its lock writes are refused)" if found.get("alive")
                else ""))


ns = Collection(unlock)
