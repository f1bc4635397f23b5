"""`fab -H a,b deploy` on two stand-ins: one build for both, and a failure on the second host puts the first back,
so the pair never stays half on the new version."""
import json
import re
import shutil
import subprocess

import pytest

from tasks import remote
from tests.conftest import assert_one_line_error, fab
from tests.standin.app_changes import set_frontend_title
from tests.standin.conftest import get, make_standin, remove_standin, with_example_app
from tests.standin.harness import standin_settings

pytestmark = pytest.mark.standin


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pair")
    a, b = make_standin("qmspaira", tmp), make_standin("qmspairb", tmp)
    try:
        # Both pull git://standin-host/qms.git, each from its own host side: let them serve one repository.
        shutil.rmtree(b.dir / "git", ignore_errors=True)
        (a.dir / "git").mkdir(exist_ok=True)
        (b.dir / "git").symlink_to(a.dir / "git")
        with_example_app(a, tmp)
        both = tmp / "ssh_config"
        both.write_text(a.ssh_config.read_text() + "\n" + b.ssh_config.read_text())
        a.conf.write_text(standin_settings(a.name, ssh_config=both, app_dir=a.app,
                                           extra=f"  secrets_file: {a.secrets}\n  setup:\n    superuser: ''\n"))
        hosts = f"{a.name},{b.name}"
        made = fab("-f", a.conf, "-H", hosts, "setup", timeout=1800)
        assert made.returncode == 0, made.stdout[-3000:] + made.stderr
        yield a, b, hosts
    finally:
        remove_standin(a)
        remove_standin(b)


def title(standin) -> str:
    code, page = get(standin, "/")
    assert code == 200, page
    return re.search(r"<title[^>]*>([^<]*)</title>", page).group(1)


def test_one_build_deploys_to_both_hosts(pair):
    a, b, hosts = pair
    set_frontend_title(a.app, "QMS pair v2")
    a.publish("v2")
    result = fab("-f", a.conf, "-H", hosts, "deploy", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert title(a) == title(b) == "QMS pair v2"
    assert result.stdout.count("> next build") == 1 and result.stdout.count("not building again") == 1
    assert f"[{a.name}] deploy ok" in result.stdout and f"[{b.name}] deploy ok" in result.stdout


def test_a_failure_on_the_second_host_puts_the_first_back(pair):
    a, b, hosts = pair
    # Another deploy holds b's lock, alive for as long as this ssh session runs.
    owner = json.dumps({"action": "deploy", "user": "colleague", "from": "laptop", "client_pid": 4242,
                        "since": "2026-11-28 10:00:00 UTC", "step": "migrate"})
    holder = subprocess.Popen(["ssh", "-F", str(b.ssh_config), b.name,
                               remote.command("lock_agent", "hold", "/home/ubuntu/QMS/.deploy/lock", owner)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert "taken" in holder.stdout.readline()
        set_frontend_title(a.app, "QMS pair v3")
        a.publish("v3")
        result = fab("-f", a.conf, "-H", hosts, "deploy", timeout=900)
        line = assert_one_line_error(result, f"[{b.name}] another deploy by colleague from laptop", "at step migrate",
                                     f"hosts switched before it: {a.name} put back")
        assert f"[{a.name}] deploy ok" in result.stdout     # a was switched, then put back
        assert title(a) == title(b) == "QMS pair v2"
        history = [json.loads(x) for x in a.ssh("cat /home/ubuntu/QMS/.deploy/history.jsonl").stdout.splitlines()]
        assert [e["action"] for e in history[-2:]] == ["deploy", "rollback"] and history[-1]["result"] == "ok"
        print(line)
    finally:
        holder.communicate("release\n", timeout=30)
