"""The backend end to end on a stand-in of its own: the guide's section 5 (uv in ~/.local/bin), a release per deploy
run by the app's own user, a new commit with a migration and an endpoint, a commit that cannot start (it never
serves, under steady traffic), and restarts under steady traffic with no failed request."""
import hashlib
import json
import os
import shlex
import secrets
import subprocess
import threading
import time
from collections import Counter

import pytest

from tests.conftest import assert_one_line_error, fab
from tests.standin.app_changes import add_owner_field_and_endpoint, set_backend_version
from tests.standin.conftest import deploy_in_background, example_app_module, get, served, wait_for_output
from tests.standin.harness import more_settings

pytestmark = pytest.mark.standin


box = example_app_module("qmsback", "box")


def test_uv_from_local_bin_and_the_service_comes_up(box):
    assert "/home/ubuntu/.local/bin/uv" in box.setup_output
    assert box.ssh(f"systemctl is-active qms-backend@{served(box)}.service").stdout.strip() == "active"
    unit = box.ssh("cat /etc/systemd/system/qms-backend@.service").stdout
    assert "ExecStart=/home/ubuntu/QMS/releases/%i/venv/bin/uvicorn " in unit and " uv " not in unit
    assert box.ssh("stat -c %a /home/ubuntu/QMS/shared/.env").stdout.strip() == "600"
    code, body = get(box, "/api/health/")
    assert code == 200 and '"status": "ok"' in body
    assert get(box, "/django-admin/login/")[0] == 200
    assert get(box, "/static/admin/css/base.css")[0] == 200   # collectstatic, served by nginx


def test_the_app_runs_as_its_own_user_and_cannot_touch_its_code_sudo_or_the_deploy_users_keys(box):
    """From inside the app (fab manage runs what the app could run): its code and venv are read-only, sudo is out of
    reach, the deploy user's ssh keys unreadable; only the database directory is its own, 0700 with the file 0600."""
    probe = ("import os, subprocess; from pathlib import Path\n"
             "def attempt(f):\n"
             "    try:\n        f(); return 'allowed'\n"
             "    except Exception as e:\n        return type(e).__name__\n"
             "print('user', os.getuid() != 1000 and Path('/proc/self/status').read_text().count('NoNewPrivs:\\t1'))\n"
             "print('code', attempt(lambda: open('/home/ubuntu/QMS/current/backend/manage.py', 'a')))\n"
             "print('venv', attempt(lambda: open('/home/ubuntu/QMS/current/backend/.venv/pyvenv.cfg', 'a')))\n"
             "print('sudo', subprocess.run(['sudo', '-n', 'true'], capture_output=True).returncode != 0)\n"
             "print('ssh', attempt(lambda: os.listdir('/home/ubuntu/.ssh')))\n"
             "print('db', attempt(lambda: open(os.environ['DATABASE_PATH'], 'a')))\n")
    result = box.fab("manage", f"shell -c {shlex.quote(probe)}")
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if line.split(" ")[0] in
                 ("user", "code", "venv", "sudo", "ssh", "db"))
    # refused by the files' owner and modes, and by the unit's read-only file system as well
    refused = ("PermissionError", "OSError")
    assert lines["code"] in refused and lines["venv"] in refused, result.stdout
    assert {k: lines[k] for k in ("user", "sudo", "ssh", "db")} == {"user": "1", "sudo": "True",
                                                                   "ssh": "PermissionError", "db": "allowed"}
    modes = box.ssh("sudo stat -c '%a %U' ~/QMS/shared/db ~/QMS/shared/db/db.sqlite3 ~/QMS/current/backend/manage.py "
                    "$(readlink -f ~/QMS/current/venv)/bin/python").stdout.split("\n")
    assert modes[:2] == ["700 qms", "600 qms"] and modes[2] in ("644 ubuntu", "755 ubuntu"), modes
    assert box.ssh("getent passwd qms | cut -d: -f7").stdout.strip() == "/usr/sbin/nologin"
    assert box.ssh("sudo -l -U qms").stdout.count("may run") == 0


def test_a_commit_with_a_migration_and_an_endpoint(box):
    add_owner_field_and_endpoint(box.app)
    box.publish("owners endpoint and migration")
    assert get(box, "/api/owners/")[0] == 404

    before = served(box)
    result = box.fab("deploy")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "(1 commits from main)" in result.stdout
    assert "pending migrations: quality.0002_defect_owner" in result.stdout
    backup = result.stdout.split("backup ")[1].split(":")[0]
    assert served(box) != before
    # the old release kept for rollback, its backend running as the standby (qms.backend.standby)
    assert box.ssh(f"systemctl is-active qms-backend@{before}.service", check=False).stdout.strip() == "active"
    assert box.ssh(f"test -f ~/QMS/releases/{before}/release.json", check=False).returncode == 0
    code, body = get(box, "/api/owners/")
    assert code == 200 and '"owners"' in body
    packed = f"/home/ubuntu/QMS/backups/{backup}.sqlite3.gz"
    assert box.ssh(f"stat -c %a {packed}").stdout.strip() == "600"
    box.ssh(f"gunzip -c {packed} > /tmp/pre.sqlite3 && sha256sum {packed} | cut -c1-64 | diff - <(cut -c1-64 "
            f"{packed}.sha256)")
    assert box.ssh("sqlite3 /tmp/pre.sqlite3 'PRAGMA integrity_check'").stdout.strip() == "ok"
    assert "owner" not in box.ssh("sqlite3 /tmp/pre.sqlite3 '.schema quality_defect'").stdout   # taken before


def test_a_dirty_server_clone_is_refused(box):
    box.ssh("echo '# edited on the server' >> ~/QMS/backend/manage.py")
    try:
        result = box.fab("git-pull")
        assert_one_line_error(result, "has local changes (backend/manage.py)", "stash -u")
    finally:
        box.ssh("git -C ~/QMS checkout -- backend/manage.py")


def test_what_the_server_generates_never_blocks_a_pull(box):
    """Tracked bytecode that the server's Python rewrites, and new bytecode beside it (the guide's QMS had
    __pycache__/ in git): git-pull puts the one back and ignores the other, where it used to refuse for ever."""
    cache = box.app / "backend/quality/__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "apps.cpython-311.pyc").write_bytes(b"committed bytecode")
    subprocess.run(["git", "-C", str(box.app), "add", "-f", str(cache)], check=True)
    box.publish("bytecode in git, as teams commit it")
    assert box.fab("git-pull").returncode == 0
    box.ssh("cd ~/QMS/backend/quality/__pycache__ && echo rewritten > apps.cpython-311.pyc && echo new > x.pyc")
    (box.app / "backend/NOTE.txt").write_text("a later commit\n")
    box.publish("a later commit")
    result = box.fab("git-pull")
    assert result.returncode == 0, result.stderr
    assert "put back 1 tracked file(s) the server generated" in result.stdout
    assert box.ssh("cat ~/QMS/backend/NOTE.txt").stdout == "a later commit\n"


def test_a_release_that_fails_its_health_never_serves(box):
    """A commit whose health endpoint fails starts beside the served release and is refused there: under steady
    traffic every answer is the served version's 200, and the failed release is gone."""
    views = box.app / "backend/quality/views.py"
    good = views.read_text()
    old_version = get(box, "/api/version/")[1]
    views.write_text(good.replace('"migrations": migrations})', '"migrations": migrations}, status=500)'))
    set_backend_version(box.app, "never-served")
    box.publish("health fails")
    before = served(box)
    try:
        with Traffic(box, "/api/version/") as traffic:
            result = box.fab("deploy")
        assert result.returncode == 1
        assert_one_line_error(result, "is not healthy", "/api/health/ answers 500", alone=False)
        assert set(traffic.results) == {200} and traffic.results[200] >= 10, traffic.results
        assert list(traffic.answers) == [old_version], traffic.answers     # the old version's answers throughout
        assert served(box) == before
        releases = box.ssh("ls ~/QMS/releases").stdout.split()
        assert releases and all(box.ssh(f"test -f ~/QMS/releases/{r}/release.json", check=False).returncode == 0
                                for r in releases)   # nothing half-made is left
        # the failed release's backend stopped: only kept releases' run (the served one, and the standby if any)
        active = set(box.ssh("systemctl list-units --plain --no-legend --state=active 'qms-backend@*.service' "
                             "| sed 's/^qms-backend@//; s/[.]service.*//'").stdout.split())
        assert before in active and active <= set(releases), (active, releases)
    finally:
        views.write_text(good)
        box.publish("fixed")
        assert box.fab("deploy").returncode == 0
    assert get(box, "/api/health/")[0] == 200


def test_a_commit_that_cannot_start_fails_with_the_journal(box):
    settings = box.app / "backend/backend/settings.py"
    good = settings.read_text()
    settings.write_text(good + "\nraise RuntimeError('broken on purpose')\n")
    box.publish("broken")
    try:
        result = box.fab("deploy")
        assert result.returncode == 1
        assert "RuntimeError: broken on purpose" in result.stdout + result.stderr
        assert_one_line_error(result, "manage.py cannot run", alone=False)
    finally:
        settings.write_text(good)
        box.publish("fixed")
        assert box.fab("deploy").returncode == 0
    assert get(box, "/api/health/")[0] == 200


class Traffic:
    """Steady requests to `path` (default /api/health/) through nginx over HTTPS (5 a second: under the site's rate
    limit), each outcome counted: an HTTP status, or curl's exit code when no answer came (refused, reset, timeout);
    the bodies of the 200s in `answers`."""

    def __init__(self, box, path: str = "/api/health/"):
        self.box, self.path, self.results, self.answers = box, path, Counter(), Counter()
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            code, body = get(self.box, self.path)
            self.results[code or "no answer"] += 1
            if code == 200:
                self.answers[body] += 1
            time.sleep(0.2)

    def __enter__(self):
        self.thread = threading.Thread(target=self.run)
        self.thread.start()
        time.sleep(1)
        return self

    def __exit__(self, *exc):
        time.sleep(1)
        self.stop.set()
        self.thread.join()


@pytest.mark.parametrize("mode", ["restart", "reload"])
def test_no_request_fails_during_a_restart(box, mode):
    with Traffic(box) as traffic:
        result = box.fab("restart", "--mode", mode)
    assert result.returncode == 0, result.stderr
    assert set(traffic.results) == {200} and traffic.results[200] >= 10, traffic.results


def test_the_service_fits_the_small_box(box):
    rss_kb = sum(int(x) for x in box.ssh("ps -o rss= -u qms").stdout.split() if x.isdigit())
    print(f"backend resident memory: {rss_kb // 1024} MB")
    assert rss_kb < 400 * 1024   # MemoryMax of the unit; the 1 GB box also runs nginx and the system


def test_logs_show_the_journal_and_nginx(box):
    result = box.fab("logs", "-n", "5")
    assert result.returncode == 0 and "uvicorn" in result.stdout
    access = box.fab("logs", "--which", "access", "-n", "3")
    assert access.returncode == 0 and "GET /api/health/" in access.stdout


def test_diverged_history_on_the_server_is_refused(box):
    box.ssh("git -C ~/QMS -c user.name=x -c user.email=x@x commit -q --allow-empty -m 'made on the server'")
    try:
        (box.app / "backend" / "NOTE.txt").write_text("upstream moves on\n")
        box.publish("upstream commit")
        result = box.fab("git-pull")
        assert_one_line_error(result, "does not contain the server's commit", "reset --keep")
    finally:
        box.ssh("git -C ~/QMS reset -q --keep HEAD~1")
    assert box.fab("git-pull").returncode == 0


def test_a_unit_whose_program_is_missing_is_refused_before_install(box):
    before = box.ssh("cat /etc/systemd/system/qms-backend@.service").stdout
    release = served(box)
    box.ssh(f"mv ~/QMS/releases/{release}/backend/.venv ~/QMS/releases/{release}/backend/.venv-away")
    try:
        result = box.fab("service")
        assert_one_line_error(result, "refusing to install qms-backend@.service",
                              f"/home/ubuntu/QMS/releases/{release}/backend/.venv/bin/uvicorn does not exist or is "
                              "not executable", "run deps first")
    finally:
        box.ssh(f"mv ~/QMS/releases/{release}/backend/.venv-away ~/QMS/releases/{release}/backend/.venv")
    assert box.ssh("cat /etc/systemd/system/qms-backend@.service").stdout == before


def test_manage_runs_a_command_in_the_services_environment(box):
    result = box.fab("manage", "seed_defect_data")
    assert result.returncode == 0, result.stderr
    assert "Created" in result.stdout
    code, body = get(box, "/api/defects/")
    assert code == 200 and body.count('"title"') >= 1


def test_a_command_past_its_timeout_is_stopped_in_one_line(box, tmp_path):
    impatient = tmp_path / "impatient.yaml"
    impatient.write_text(more_settings(box.conf.read_text(), "  ssh:\n    long_timeout: 10\n"))
    started = time.monotonic()
    result = fab("-f", impatient, "manage", "shell -c 'import time; time.sleep(120)'", timeout=120)
    assert time.monotonic() - started < 40
    assert_one_line_error(result, "did not finish within 10 s and was stopped", "raise qms.ssh.long_timeout",
                          alone=False)
    assert get(box, "/api/health/")[0] == 200


def test_deps_installs_uv_from_pypi_when_the_server_has_none(box):
    box.ssh("mv ~/.local/bin/uv ~/.local/bin/uv.away && sudo rm -rf /opt/uv")
    try:
        result = box.fab("deps")
        assert result.returncode == 0, result.stderr
        assert "installing it from PyPI" in result.stdout and "(/opt/uv/bin/uv)" in result.stdout
    finally:
        box.ssh("mv ~/.local/bin/uv.away ~/.local/bin/uv")


def test_env_diff_names_keys_never_values_and_a_change_restarts(box, tmp_path):
    conf = tmp_path / "more.yaml"
    conf.write_text(box.conf.read_text().replace(
        "qms:\n", "qms:\n  backend:\n    env:\n      FEATURE_FLAG: 'on $HOME \"quoted\" #1'\n"))
    before = box.ssh("sudo sha256sum /home/ubuntu/QMS/shared/.env").stdout
    diff = fab("-f", conf, "env", "--diff")
    assert diff.returncode == 0, diff.stderr
    assert "added    FEATURE_FLAG" in diff.stdout and "quoted" not in diff.stdout
    assert box.ssh("sudo sha256sum /home/ubuntu/QMS/shared/.env").stdout == before
    try:
        assert fab("-f", conf, "env").returncode == 0
        assert 'FEATURE_FLAG="on $HOME \\"quoted\\" #1"' in box.ssh("sudo cat /home/ubuntu/QMS/shared/.env").stdout
        assert box.ssh("stat -c %a /home/ubuntu/QMS/shared/.env").stdout.strip() == "600"
        restarted = fab("-f", conf, "restart")
        assert restarted.returncode == 0 and "restarted and healthy" in restarted.stdout
        shown = fab("-f", conf, "manage", "shell -c \"import os; print(os.environ['FEATURE_FLAG'])\"")
        assert 'on $HOME "quoted" #1' in shown.stdout
        # the standby started before this .env: a rollback starts it again rather than serve the old values
        now = served(box)
        back = fab("-f", conf, "rollback")
        assert back.returncode == 0, back.stdout[-2000:] + back.stderr
        assert "running and healthy: switching" not in back.stdout and " healthy in " in back.stdout
        assert fab("-f", conf, "rollback", "--to", now).returncode == 0
    finally:
        assert box.fab("env").returncode == 0 and box.fab("restart").returncode == 0


def test_the_apps_secrets_reach_the_running_app_and_the_tools_own_stay_here(box):
    """Every key of the secrets file but the tool's own goes to the server's .env (0600), which the service reads;
    no value shows in the tool's output or on a command line the server logs (sudo writes those to the journal)."""
    token, aws = f"app-token-{secrets.token_hex(12)}", f"aws-secret-{secrets.token_hex(12)}"
    digest = hashlib.sha256(token.encode()).hexdigest()
    original = box.secrets.read_text()
    box.secrets.write_text(original + f"QMS_APP_TOKEN={token}\nAWS_ACCESS_KEY_ID=AKIA{secrets.token_hex(8).upper()}"
                                      f"\nAWS_SECRET_ACCESS_KEY={aws}\nDJANGO_SUPERUSER_PASSWORD={aws}-su\n")
    try:
        written = box.fab("env")
        assert written.returncode == 0, written.stderr
        assert "added    QMS_APP_TOKEN" in written.stdout and "AWS_" not in written.stdout
        env = box.ssh("sudo cat /home/ubuntu/QMS/shared/.env").stdout
        assert f'QMS_APP_TOKEN="{token}"' in env
        assert "AWS_" not in env and "DJANGO_SUPERUSER_PASSWORD" not in env and aws not in env
        assert box.ssh("stat -c '%a %U' /home/ubuntu/QMS/shared/.env").stdout.strip() == "600 ubuntu"
        restarted = box.fab("restart")
        assert restarted.returncode == 0, restarted.stderr
        # the running service's own environment, and manage.py's (the same EnvironmentFile): compared by digest,
        # so that the value stays off the command lines
        running = box.ssh(f"sudo cat /proc/$(systemctl show -p MainPID --value qms-backend@{served(box)}.service)/environ "
                          "| tr '\\0' '\\n' | sed -n 's/^QMS_APP_TOKEN=//p' | tr -d '\\n' | sha256sum").stdout
        assert running.split()[0] == digest
        shell = box.fab("manage", "shell -c \"import hashlib, os; "
                                  "print(hashlib.sha256(os.environ['QMS_APP_TOKEN'].encode()).hexdigest())\"")
        assert shell.returncode == 0 and digest in shell.stdout, shell.stderr
        for result in (written, restarted, shell):
            assert token not in result.stdout + result.stderr and aws not in result.stdout + result.stderr
        journal = box.ssh("sudo journalctl -o cat --since '-30 min'").stdout
        assert "COMMAND=" in journal and token not in journal and aws not in journal
    finally:
        box.secrets.write_text(original)
        assert box.fab("env").returncode == 0 and box.fab("restart").returncode == 0


def test_layouts_as_they_come_requires_python_uvicorn_and_a_requirements_txt_at_the_root(box, tmp_path):
    """deps names the server's Python against requires-python before it installs anything, names a missing uvicorn,
    and installs a requirements.txt at the repository root (qms.backend.python_project: .) that the unit runs."""
    pyproject = box.app / "backend/pyproject.toml"
    original = pyproject.read_text()
    root = tmp_path / "root.yaml"
    root.write_text(box.conf.read_text().replace("qms:\n", "qms:\n  backend:\n    python_project: .\n"))
    # one minor version above the server's own Python, whichever release the stand-in runs
    major, minor = box.ssh("python3 -c 'import sys; print(*sys.version_info[:2])'").stdout.split()
    newer = f"{major}.{int(minor) + 1}"
    try:
        pyproject.write_text(original.replace('requires-python = ">=3.11"', f'requires-python = ">={newer}"'))
        box.publish(f"needs Python {newer}")
        assert_one_line_error(box.fab("deploy"), f"the project needs Python >={newer}",
                              f"the server's python3 is {major}.{minor}.", alone=False)
        pyproject.write_text(original)
        (box.app / "requirements.txt").write_text("django>=5.2,<6\ndjango-cors-headers>=4\n")
        box.publish("requirements.txt at the root, without uvicorn")
        assert_one_line_error(fab("-f", root, "deploy"), "/.venv/bin/uvicorn is missing",
                              "add uvicorn to your dependencies", alone=False)
        (box.app / "requirements.txt").write_text("django>=5.2,<6\ndjango-cors-headers>=4\nuvicorn>=0.30\n")
        box.publish("uvicorn")
        result = fab("-f", root, "deploy")
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr
        assert box.ssh("readlink ~/QMS/current/venv").stdout.strip() == ".venv"
        assert get(box, "/api/health/")[0] == 200
        # the release before (venv in backend/) still starts: a rollback to it needs nothing of the new layout
        rolled = fab("-f", root, "rollback")
        assert rolled.returncode == 0, rolled.stdout[-2000:] + rolled.stderr
        assert box.ssh("readlink ~/QMS/current/venv").stdout.strip() == "backend/.venv"
    finally:
        (box.app / "requirements.txt").unlink(missing_ok=True)
        pyproject.write_text(original)
        box.publish("back to backend/pyproject.toml")
        result = box.fab("deploy")
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr


def test_a_health_path_the_app_lacks_and_an_unknown_command_name_what_to_change(box, tmp_path):
    elsewhere = tmp_path / "health.yaml"
    elsewhere.write_text(more_settings(box.conf.read_text(), "  smoke:\n    health_path: healthz/\n"))
    assert_one_line_error(fab("-f", elsewhere, "restart"), "runs but /api/healthz/ answers 404",
                          "set qms.smoke.health_path", alone=False)
    # manage shows the command's own output, then the error line, which names Django's problem, not its usage hint
    assert_one_line_error(box.fab("manage", "seed_nothing"), "manage.py seed_nothing failed",
                          "Unknown command: 'seed_nothing'", alone=False)
    assert box.fab("restart").returncode == 0


def test_fix_perms_never_follows_a_link_out_of_the_releases(box):
    """A served tree replaced by a link to /etc (by hand, or by an app that could write there): fix-perms changes
    nothing behind it, says so, and fails; /etc keeps every mode (a chmod -R through the link would make
    /etc/shadow world-readable)."""
    static = f"~/QMS/releases/{served(box)}/backend/staticfiles"
    etc = "sudo find /etc -xdev -printf '%m %u %p\\n' | sort"
    before = box.ssh(etc).stdout
    hostname_mode = box.ssh("stat -c %a /etc/hostname").stdout.strip()
    box.ssh(f"mv {static} {static}.away && ln -s /etc {static} && sudo chmod 600 /etc/hostname")
    try:
        result = box.fab("fix-perms")
        assert_one_line_error(result, "backend/staticfiles leads out of the releases", "deploy again")
        assert "leads to /etc, outside /home/ubuntu/QMS/releases: not followed" in result.stdout
        assert box.ssh("sudo stat -c %a /etc/hostname /etc/shadow").stdout.split() == ["600", "640"]
        checked = box.fab("fix-perms", "--check")
        assert_one_line_error(checked, "leads out of the releases")
    finally:
        box.ssh(f"sudo chmod {hostname_mode} /etc/hostname && rm {static} && mv {static}.away {static}")
    after = box.ssh(etc).stdout
    assert after == before, set(after.splitlines()) ^ set(before.splitlines())
    assert box.fab("fix-perms", "--check").returncode == 0


def test_a_release_that_fails_djangos_checks_never_migrates_or_serves(box):
    """`manage.py check --deploy` runs against the new release before anything migrates: an error in it (a
    CharField whose max_length is negative) stops the deploy there, naming Django's own message."""
    models = box.app / "backend/quality/models.py"
    good = models.read_text()
    models.write_text(good.replace("class Defect(models.Model):\n",
                                   "class Defect(models.Model):\n    broken = models.CharField(max_length=-1)\n", 1))
    box.publish("a field Django's checks refuse")
    before = served(box)
    try:
        result = box.fab("deploy")
        line = assert_one_line_error(result, "check --deploy", "fields.E121", alone=False)
        assert "max_length" in line and "was discarded" in line
        assert "== migrate" not in result.stdout and served(box) == before
    finally:
        models.write_text(good)
        box.publish("fixed")
        assert box.fab("deploy").returncode == 0


def test_a_dropped_link_ends_the_deploy_within_the_keepalive_and_the_next_one_takes_the_lock_over(box):
    """The stand-in's link goes down for 30 s in the middle of a deploy (a VPS whose route died): the deploy ends in
    one line well before the link comes back, without spinning, and sshd drops the dead session too, so the next
    deploy needs no unlock and serves the new commit."""
    set_backend_version(box.app, "after the drop")
    box.publish("a version deployed across a dropped link")
    veth = f"qms{json.loads((box.dir / 'info.json').read_text())['index']}h"
    log = box.tmp / "dropped-link.log"
    deploy = deploy_in_background(box, log)
    wait_for_output(deploy, log, "== deps")
    subprocess.run(["ip", "link", "set", veth, "down"], check=True)
    dropped = time.monotonic()
    try:
        while True:
            pid, status, usage = os.wait4(deploy.pid, os.WNOHANG)
            if pid:
                break
            assert time.monotonic() - dropped < 29, "the deploy still waits on the dead link"
            time.sleep(0.2)
        ended = time.monotonic() - dropped
    finally:
        time.sleep(max(0.0, 30 - (time.monotonic() - dropped)))
        subprocess.run(["ip", "link", "set", veth, "up"], check=True)
    print(f"the deploy ended {ended:.1f} s after the link went down, using {usage.ru_utime + usage.ru_stime:.1f} s "
          "of CPU")
    assert os.waitstatus_to_exitcode(status) != 0
    assert usage.ru_utime + usage.ru_stime < 10                   # waited, did not spin
    errors = [line for line in log.read_text().splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "was lost" in errors[0], log.read_text()[-3000:]
    assert "Traceback" not in log.read_text()
    again = box.fab("deploy")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr
    assert "taking over a stale lock" in again.stdout
    assert "after the drop" in get(box, "/api/version/")[1]
