"""The lock agent run here as the server runs it (python3 -c, one JSON answer per line): one owner, always. A
forced unlock leaves the old holder no way to touch the new owner's lock, five takers of one stale lock end with
one owner, and a lock whose step cannot be written (a full disk) or whose owner cannot be read stays held."""
import json
import os
import resource
import subprocess
import threading

import tasks
from tasks import remote


def agent(*args, file_size_limit=None) -> subprocess.Popen:
    def limit():   # what a full disk does to a writer, without a disk to fill: writes past the limit fail
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))
    return subprocess.Popen(["sh", "-c", remote.command("lock_agent", *args)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=limit if file_size_limit else None)


def owner(action: str) -> str:
    return json.dumps({"action": action, "user": "alice", "from": "laptop", "client_pid": 42,
                       "since": "2026-12-01 10:00:00 UTC", "step": "preflight"})


class Holder:
    """`lock_agent hold`, kept running as a deploy's SSH channel keeps it."""

    def __init__(self, lock, action, file_size_limit=None):
        self.process = agent("hold", lock, owner(action), file_size_limit=file_size_limit)
        self.first = json.loads(self.process.stdout.readline() or '{"error": "no answer"}')

    def ask(self, line: str) -> dict:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def end(self) -> None:
        _, stderr = self.process.communicate(timeout=30)
        assert "Traceback" not in stderr, stderr


def once(*args) -> dict:
    process = agent(*args)
    stdout, stderr = process.communicate(timeout=30)
    assert "Traceback" not in stderr, stderr
    return remote.parse_answer(stdout)


def make_stale_lock(lock) -> None:
    """The lock of a deploy that was killed: its holder's pid runs no more (nor with that start time)."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    os.mkdir(lock)
    (lock / "owner.json").write_text(json.dumps({"action": "deploy", "user": "bob", "pid": gone.pid, "start": "1",
                                                 "step": "migrate"}))


def test_after_unlock_force_the_old_holder_cannot_touch_the_new_owners_lock(tmp_path):
    lock = str(tmp_path / "lock")
    first = Holder(lock, "deploy")
    assert first.first["taken"] and first.ask("step migrate") == {"ok": True}
    assert once("unlock", lock)["held"]["action"] == "deploy"       # without --force a live lock stays
    assert once("unlock", lock, "force")["removed"]["step"] == "migrate"
    second = Holder(lock, "upload")
    assert second.first == {"taken": True, "stale": None}
    lost = first.ask("step restart")                               # the hung deploy wakes up
    assert lost["lost"]["action"] == "upload"
    assert first.ask("release")["lost"]["action"] == "upload"
    first.end()
    found = once("status", lock)
    assert found["alive"] and found["owner"]["action"] == "upload" and found["owner"]["step"] == "preflight"
    assert second.ask("step deps") == {"ok": True} and second.ask("release") == {"released": True}
    second.end()
    assert once("status", lock) == {"owner": None, "locked": False, "alive": False}


def test_five_takers_of_one_stale_lock_end_with_one_owner_the_others_name_it(tmp_path):
    for round_ in range(5):
        lock = tmp_path / f"lock{round_}"
        make_stale_lock(lock)
        holders: list = [None] * 5

        def take(i):
            holders[i] = Holder(str(lock), f"deploy{i}")
        threads = [threading.Thread(target=take, args=(i,)) for i in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [h for h in holders if "taken" in h.first]
        assert len(winners) == 1, [h.first for h in holders]
        winner = winners[0]
        assert winner.first["stale"]["user"] == "bob"
        name = json.loads((lock / "owner.json").read_text())["action"]
        assert all(h.first["held"]["action"] == name for h in holders if h is not winner)
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(f"lock{round_}")) == \
            [f"lock{round_}", f"lock{round_}.flock"]                # nothing half-made beside it
        for h in holders:
            if h is not winner:
                h.end()
        assert winner.ask("release") == {"released": True}
        winner.end()


def test_a_step_that_cannot_be_written_keeps_the_lock_held(tmp_path):
    lock = str(tmp_path / "lock")
    holder = Holder(lock, "deploy", file_size_limit=400)   # the owner fits; a step with a long name does not
    assert holder.first["taken"]
    answer = holder.ask("step " + "x" * 500)
    assert answer["ok"] and "could not record step" in answer["warning"]
    found = once("status", lock)
    assert found["alive"] and found["owner"]["step"] == "preflight"
    assert holder.ask("step deps") == {"ok": True}             # space again: steps are recorded again
    assert holder.ask("release") == {"released": True}
    holder.end()


def test_a_take_that_cannot_write_leaves_no_lock(tmp_path):
    lock = tmp_path / "lock"
    holder = Holder(str(lock), "deploy", file_size_limit=20)
    assert "cannot write the lock" in holder.first["error"] and "free some space" in holder.first["error"]
    holder.end()
    assert not lock.exists() and once("status", str(lock))["locked"] is False


def test_a_lock_whose_owner_cannot_be_read_is_held_until_unlock_force(tmp_path):
    lock = tmp_path / "lock"
    lock.mkdir()
    (lock / "owner.json").write_text('{"action": "dep')             # cut short by hand, or a lock without it
    assert once("status", str(lock)) == {"owner": None, "locked": True, "alive": True}
    refused = Holder(str(lock), "deploy")
    assert refused.first == {"held": None}
    refused.end()
    assert once("unlock", str(lock)) == {"held": None}
    assert once("unlock", str(lock), "force") == {"removed": {}}
    assert not lock.exists()


# The tasks that change the server, as issue #16 listed them: each must take the lock.
MUTATING = {"upload", "restore", "migrate", "manage", "nginx-reload", "tls", "service", "restart", "fix-perms", "env",
            "backup", "deps", "collectstatic", "prepare", "git-pull", "deploy", "setup", "rollback"}


def test_every_task_declares_how_it_stands_to_the_lock():
    """A new task without tasks.lock's `locked`, `read_only` or `own_lock` fails here, so none skips the lock by
    being forgotten; the ones that change the server take it."""
    declared = {name: getattr(task.body, "qms_lock", None) for name, task in tasks.ns.tasks.items()}
    assert not [name for name, how in declared.items() if how not in ("locked", "read-only", "own")], declared
    assert not [name for name in MUTATING if declared[name] == "read-only"]
    assert {name for name, how in declared.items() if how == "own"} == {"deploy", "upload", "rollback", "setup",
                                                                         "unlock"}
