"""The server reboots (a kernel update, the provider's maintenance, a reboot in the middle of a deploy): it comes back
by itself serving one complete version over HTTPS, and the next deploy is clean. The stand-in reboots like a VPS:
scripts/standin boots it again when the machine inside asks for a reboot."""
import time

import pytest

from tests.standin.app_changes import set_backend_version
from tests.standin.conftest import deploy_in_background, example_app_module, get, stamp_export, wait_for_output

pytestmark = pytest.mark.standin


box = example_app_module("qmsboot", "box")


def booted_at(box) -> str:
    """When the machine's init started: a new value after every boot (the kernel, and so uptime, is the host's)."""
    return box.ssh("ps -o lstart= -p 1", check=False).stdout.strip()


def reboot(box) -> float:
    """`systemctl reboot` inside, then wait until the machine has booted again; the seconds it took."""
    before, started = booted_at(box), time.monotonic()
    box.ssh("sudo systemctl reboot", check=False)
    while time.monotonic() - started < 180:
        now = booted_at(box)
        if now and now != before:
            box.ssh("systemctl is-system-running --wait", check=False)   # every unit started (or failed)
            return time.monotonic() - started
        time.sleep(1)
    raise AssertionError("the stand-in did not come back within 180 s")


def serves(box, marker: str, version: str) -> None:
    """One complete version over HTTPS: its page and its API."""
    page, api = get(box, "/"), get(box, "/api/version/")
    assert page[0] == 200 and f"QMS frontend {marker}" in page[1], page
    assert api[0] == 200 and f'"{version}"' in api[1], api


def running_instances(box) -> list[str]:
    return box.ssh("systemctl list-units --plain --no-legend --state=active 'qms-backend@*.service'").stdout.split(
        "\n")[:-1]


def release(box, marker: str, version: str) -> None:
    set_backend_version(box.app, version)
    box.publish(f"version {version}")
    stamp_export(box, marker)


def test_after_a_reboot_the_site_comes_back_by_itself_and_the_next_deploy_is_clean(box):
    release(box, "v2", "2")
    assert box.fab("deploy").returncode == 0
    serves(box, "v2", "2")
    took = reboot(box)
    print(f"the stand-in rebooted in {took:.1f} s")
    serves(box, "v2", "2")
    assert len(running_instances(box)) == 2, running_instances(box)   # the served release and the standby
    # the standby came back too: a rollback switches to it without starting it, and forward again
    now = box.ssh("basename $(readlink ~/QMS/current)").stdout.strip()
    back = box.fab("rollback")
    assert back.returncode == 0 and "backend is running and healthy: switching to it" in back.stdout, back.stdout
    serves(box, "backend", "1")
    assert box.fab("rollback", "--to", now).returncode == 0
    serves(box, "v2", "2")
    release(box, "v3", "3")
    after = box.fab("deploy")
    assert after.returncode == 0, after.stdout[-3000:] + after.stderr
    assert "stale lock" not in after.stdout and "unfinished" not in after.stdout
    serves(box, "v3", "3")


def test_a_reboot_in_the_middle_of_a_deploy_leaves_the_old_version_serving_and_the_next_deploy_finishes(box):
    release(box, "v4", "4")
    log = box.tmp / "rebooted-deploy.log"
    deploy = deploy_in_background(box, log)
    wait_for_output(deploy, log, "== deps")
    reboot(box)
    assert deploy.wait(timeout=60) != 0
    errors = [line for line in log.read_text().splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in log.read_text(), log.read_text()[-3000:]
    serves(box, "v3", "3")
    again = box.fab("deploy")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr
    assert "taking over a stale lock" in again.stdout
    assert "removed unfinished release" in again.stdout
    serves(box, "v4", "4")
    assert len(running_instances(box)) == 2, running_instances(box)
