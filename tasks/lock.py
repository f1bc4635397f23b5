"""One deploy at a time per server (PEERS.md: Capistrano and Deployer leave stale locks that only a human can
judge). The lock is held by a process on the deploy's own SSH connection (tasks/remote/lock_agent.py): when a
deploy is killed, its lock is recognised as stale at once and the next deploy takes it over, saying whose it was
and at which step it stopped. `unlock` removes a lock by hand."""
import contextlib
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


class Lock:
    def __init__(self, held):
        self.held = held

    def step(self, name: str) -> None:
        if self.held:
            # a connection that broke says so in the step's own command, with the step's name
            with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                self.held.send(f"step {name}")

    def release(self) -> None:
        if self.held:
            self.held.close("release")
            self.held = None


def status(host, s) -> dict:
    return remote.parse_answer(host.probe(remote.command("lock_agent", "status", lock_dir(s))).stdout)


def take(host, s, action: str, wait: float = 0) -> Lock:
    """The server's deploy lock, or a one-line refusal naming who holds it; with `wait`, wait up to that many
    seconds for it first (PEERS.md: people want to queue behind a running deploy). Under --dry only reports."""
    if host.dry:
        found = status(host, s)
        if found.get("alive"):
            host.say(f"lock: held by {describe_owner(found['owner'])}: a deploy now would be refused")
        else:
            host.say("lock: free" + (" (a stale one would be taken over)" if found.get("locked") else ""))
        return Lock(None)
    owner = lock_owner(action, getpass.getuser(), socket.gethostname(), os.getpid(), datetime.now(timezone.utc))
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
                            "it to finish, or deploy --wait SECONDS (if it is stuck: fab unlock --force)")
        if not waiting:
            host.say(f"waiting up to {wait:g} s for the deploy lock, held by {describe_owner(answer['held'])}")
            waiting = True
        time.sleep(LOCK_POLL)
    if answer.get("stale") is not None:
        host.say(f"taking over a stale lock: {describe_owner(answer['stale'])} was interrupted (its connection is "
                 "gone); check `history` and the site")
    return Lock(held)


@task(help={"force": "remove the lock even though its deploy still runs (only if that deploy is known to be hung)"})
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
    if found.get("alive") and not force:
        raise UserError(f"[{host.name}] the lock belongs to a running {describe_owner(found['owner'])}: wait for it, "
                        "or unlock --force if it is hung")
    if host.dry:
        host.say(f"would remove the lock of {describe_owner(found['owner'])}")
        return
    answer = remote.parse_answer(host.run(remote.command("lock_agent", "unlock", lock_dir(s),
                                                         "force" if force else "")).stdout)
    host.say(f"removed the lock of {describe_owner(answer.get('removed'))}")


ns = Collection(unlock)
