"""One owner of the deploy lock, always, on a stand-in of its own set up by `fab setup`: after `unlock --force` the
old (hung) holder cannot touch the new owner's lock and stops at its next step while the new deploy finishes; five
takers racing for one stale lock end with exactly one owner, the others refused naming it; and the tasks that
change the server (upload, restore, restart, env) are refused while a deploy holds the lock, the server unchanged."""
import json
import subprocess
import threading
import time
from types import SimpleNamespace

import pytest

from tasks import lock
from tasks.core.errors import UserError
from tests.conftest import REPO, assert_one_line_error
from tests.standin.app_changes import set_backend_version
from tests.standin.conftest import example_app_module, get, stamp_export
from tests.standin.harness import project_exe

pytestmark = pytest.mark.standin

APP = "/home/ubuntu/QMS"
SETTINGS = SimpleNamespace(app_root=APP)   # all the lock needs of the settings


box = example_app_module("qmslock", "box")


def owner_on_server(box) -> dict:
    found = box.ssh(f"cat {APP}/.deploy/lock/owner.json", check=False)
    return json.loads(found.stdout) if found.returncode == 0 and found.stdout.strip() else {}


def test_after_unlock_force_the_old_holder_cannot_touch_the_new_owners_lock(box, capsys):
    hung = lock.take(box.host(), SETTINGS, "deploy")        # a deploy that hangs, its SSH session still open
    assert_one_line_error(box.fab("unlock"), "the lock belongs to a running deploy by")
    forced = box.fab("unlock", "--force")
    assert forced.returncode == 0 and "removed the lock of deploy by" in forced.stdout, forced.stdout + forced.stderr
    assert "it stops at its next step" in forced.stdout

    set_backend_version(box.app, "after the forced unlock")
    box.publish("a deploy after a forced unlock")
    log = box.tmp / "second-deploy.log"
    with open(log, "w") as out:
        second = subprocess.Popen([project_exe("fab"), "-f", str(box.conf), "deploy"], stdout=out,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO)
    deadline = time.monotonic() + 300
    while owner_on_server(box).get("client_pid") != second.pid:
        assert second.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.1)

    with pytest.raises(lock.LockLost) as lost:                 # the hung deploy wakes up at its next step
        hung.step("migrate")
    assert "lost the deploy lock before step migrate" in lost.value.reason
    assert f"(pid {second.pid})" in lost.value.reason
    hung.release()
    found = lock.status(box.host(), SETTINGS)
    assert found["alive"] and found["owner"]["client_pid"] == second.pid

    assert second.wait(timeout=900) == 0, log.read_text()[-3000:]
    assert "after the forced unlock" in get(box, "/api/version/")[1]
    assert lock.status(box.host(), SETTINGS)["locked"] is False

    # The old holder's `release` (not a step) leaves the new owner's lock alone too, and says so.
    hung = lock.take(box.host(), SETTINGS, "deploy")
    assert box.fab("unlock", "--force").returncode == 0
    new = lock.take(box.host(), SETTINGS, "rollback")
    capsys.readouterr()
    hung.release()
    assert "the deploy lock was no longer this run's, and rollback by" in capsys.readouterr().out
    assert lock.status(box.host(), SETTINGS)["owner"]["action"] == "rollback"
    new.release()
    assert lock.status(box.host(), SETTINGS)["locked"] is False


def test_five_takers_of_one_stale_lock_end_with_exactly_one_owner(box):
    hosts = [box.host() for _ in range(5)]
    for round_ in range(3):
        stale = json.dumps({"action": "deploy", "user": "bob", "from": "laptop", "client_pid": 7, "pid": 999999,
                            "start": "1", "since": "2026-12-01 10:00:00 UTC", "step": "migrate"})
        box.ssh(f"mkdir {APP}/.deploy/lock && echo '{stale}' > {APP}/.deploy/lock/owner.json")
        outcomes: list = [None] * 5
        start = threading.Barrier(5)

        def take(i):
            start.wait()
            try:
                outcomes[i] = lock.take(hosts[i], SETTINGS, f"deploy{i}")
            except UserError as refused:
                outcomes[i] = refused.reason
        threads = [threading.Thread(target=take, args=(i,)) for i in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [i for i, o in enumerate(outcomes) if isinstance(o, lock.Lock)]
        assert len(winners) == 1, outcomes
        assert owner_on_server(box)["action"] == f"deploy{winners[0]}"
        for i, refusal in enumerate(outcomes):
            if i != winners[0]:
                assert f"another deploy{winners[0]} by" in refusal and "holds the deploy lock" in refusal, refusal
        outcomes[winners[0]].release()
        print(f"round {round_}: deploy{winners[0]} won, four refused naming it")
    beside = [name for name in box.ssh(f"ls -A {APP}/.deploy").stdout.split() if name.startswith("lock")]
    assert beside == ["lock.flock"]                                # no lock, nothing half-made left


def test_tasks_that_change_the_server_are_refused_while_a_deploy_holds_the_lock(box):
    stamp_export(box, "an upload that must wait")
    held = lock.take(box.host(), SETTINGS, "deploy")
    try:
        before = box.snapshot()
        for args in (("upload",), ("restore", "latest"), ("restart",), ("env",)):
            assert_one_line_error(box.fab(*args), "another deploy by", "holds the deploy lock", "since",
                                  "fab unlock --force")
        assert box.snapshot() == before
        assert box.fab("status").returncode == 0                   # a read-only task runs beside it
    finally:
        held.release()
    assert box.fab("restart").returncode == 0                      # and with the lock free, it runs
