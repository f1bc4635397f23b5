"""The backend end to end on a stand-in of its own: the guide's section 5 (uv in ~/.local/bin), a new commit with a
migration and an endpoint, a commit that cannot start, and restarts under steady traffic with no failed request."""
import subprocess
import threading
import time
from collections import Counter

import pytest

from tests.conftest import assert_one_line_error, fab
from tests.standin.app_changes import add_owner_field_and_endpoint
from tests.standin.conftest import deploy_example_app, get, remove_standin
from tests.standin.harness import more_settings

pytestmark = pytest.mark.standin


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    """A stand-in serving the example app: frontend release, backend running under systemd, over HTTPS."""
    s = deploy_example_app("qmsback", tmp_path_factory.mktemp("backend"))
    yield s
    remove_standin(s)


def test_uv_from_local_bin_and_the_service_comes_up(box):
    assert "/home/ubuntu/.local/bin/uv" in box.steps["deps"]
    assert box.ssh("systemctl is-active qms-backend.service").stdout.strip() == "active"
    unit = box.ssh("cat /etc/systemd/system/qms-backend.service").stdout
    assert "ExecStart=/home/ubuntu/QMS/backend/.venv/bin/uvicorn " in unit and " uv " not in unit
    assert box.ssh("stat -c %a /home/ubuntu/QMS/.env").stdout.strip() == "600"
    code, body = get(box, "/api/health/")
    assert code == 200 and '"status": "ok"' in body
    assert get(box, "/django-admin/login/")[0] == 200
    assert get(box, "/static/admin/css/base.css")[0] == 200   # collectstatic, served by nginx


def test_a_commit_with_a_migration_and_an_endpoint(box):
    add_owner_field_and_endpoint(box.app)
    box.publish("owners endpoint and migration")
    assert get(box, "/api/owners/")[0] == 404

    pulled = box.fab("git-pull")
    assert pulled.returncode == 0 and "(1 commits from main)" in pulled.stdout
    for step in ("deps", "migrate", "collectstatic", "restart"):
        result = box.fab(step)
        assert result.returncode == 0, f"{step}: {result.stdout}{result.stderr}"
        if step == "migrate":
            assert "pending migrations: quality.0002_defect_owner" in result.stdout
            backup = result.stdout.split("backup ")[1].split(":")[0]
    code, body = get(box, "/api/owners/")
    assert code == 200 and '"owners"' in body
    packed = f"/home/ubuntu/QMS/backups/{backup}.sqlite3.gz"
    assert box.ssh(f"stat -c %a {packed}").stdout.strip() == "600"
    box.ssh(f"gunzip -c {packed} > /tmp/pre.sqlite3 && sha256sum {packed} | cut -c1-64 | diff - <(cut -c1-64 "
            f"{packed}.sha256)")
    assert box.ssh("sqlite3 /tmp/pre.sqlite3 'PRAGMA integrity_check'").stdout.strip() == "ok"
    assert "owner" not in box.ssh("sqlite3 /tmp/pre.sqlite3 '.schema quality_defect'").stdout   # taken before
    record = box.ssh("cat /home/ubuntu/QMS/.deploy/git.json").stdout
    assert '"previous"' in record and '"new"' in record


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


def test_a_database_in_git_is_refused_and_leaves_git_without_losing_data(box):
    database = box.app / "backend/db.sqlite3"
    database.write_bytes(b"the developer's own database")
    subprocess.run(["git", "-C", str(box.app), "add", "-f", str(database)], check=True)
    box.publish("a database committed by mistake")
    live = box.ssh("sha256sum ~/QMS/backend/db.sqlite3").stdout.split()[0]
    result = box.fab("git-pull")
    assert_one_line_error(result, "backend/db.sqlite3 is in the repository", "git rm --cached backend/db.sqlite3")
    assert "stash" not in result.stderr
    assert box.ssh("sha256sum ~/QMS/backend/db.sqlite3").stdout.split()[0] == live

    # a server whose clone already tracks it (set up by hand from such a commit): the commit that takes it out of
    # git leaves the live file where it is
    box.ssh("git -C ~/QMS fetch -q origin main && git -C ~/QMS reset -q FETCH_HEAD")
    subprocess.run(["git", "-C", str(box.app), "rm", "-q", "--cached", str(database)], check=True)
    database.unlink()
    box.publish("the database leaves git")
    result = box.fab("git-pull")
    assert result.returncode == 0, result.stderr
    assert "backend/db.sqlite3 leaves git; the server keeps the live file" in result.stdout
    assert box.ssh("sha256sum ~/QMS/backend/db.sqlite3").stdout.split()[0] == live
    assert box.ssh("git -C ~/QMS status --porcelain").stdout == ""
    assert get(box, "/api/health/")[0] == 200


def test_a_commit_that_cannot_start_fails_with_the_journal(box):
    settings = box.app / "backend/backend/settings.py"
    good = settings.read_text()
    settings.write_text(good + "\nraise RuntimeError('broken on purpose')\n")
    box.publish("broken")
    try:
        assert box.fab("git-pull").returncode == 0
        result = box.fab("restart")
        assert result.returncode == 1
        assert "RuntimeError: broken on purpose" in result.stdout   # the journal tail
        assert_one_line_error(result, "qms-backend is not healthy")
    finally:
        settings.write_text(good)
        box.publish("fixed")
        assert box.fab("git-pull").returncode == 0
        assert box.fab("restart").returncode == 0
    assert get(box, "/api/health/")[0] == 200


class Traffic:
    """Steady requests to /api/health/ through nginx over HTTPS (5 a second: under the site's rate limit), each
    outcome counted: an HTTP status, or curl's exit code when no answer came (refused, reset, timeout)."""

    def __init__(self, box):
        self.box, self.results, self.stop = box, Counter(), threading.Event()

    def run(self):
        while not self.stop.is_set():
            code, _ = get(self.box, "/api/health/")
            self.results[code or "no answer"] += 1
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
    rss_kb = sum(int(x) for x in box.ssh("ps -o rss= -u ubuntu -C python").stdout.split() if x.isdigit())
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
    before = box.ssh("cat /etc/systemd/system/qms-backend.service").stdout
    box.ssh("mv ~/QMS/backend/.venv ~/QMS/backend/.venv-away")
    try:
        result = box.fab("service")
        assert_one_line_error(result, "refusing to install qms-backend.service",
                              "/home/ubuntu/QMS/backend/.venv/bin/uvicorn does not exist or is not executable",
                              "run deps first")
    finally:
        box.ssh("mv ~/QMS/backend/.venv-away ~/QMS/backend/.venv")
    assert box.ssh("cat /etc/systemd/system/qms-backend.service").stdout == before


def test_manage_runs_a_command_in_the_services_environment(box):
    result = box.fab("manage", "seed_defect_data")
    assert result.returncode == 0, result.stderr
    assert "Created" in result.stdout
    code, body = get(box, "/api/defects/")
    assert code == 200 and body.count('"title"') >= 1


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
    before = box.ssh("sudo sha256sum /home/ubuntu/QMS/.env").stdout
    diff = fab("-f", conf, "env", "--diff")
    assert diff.returncode == 0, diff.stderr
    assert "added    FEATURE_FLAG" in diff.stdout and "quoted" not in diff.stdout
    assert box.ssh("sudo sha256sum /home/ubuntu/QMS/.env").stdout == before
    try:
        assert fab("-f", conf, "env").returncode == 0
        assert 'FEATURE_FLAG="on $HOME \\"quoted\\" #1"' in box.ssh("sudo cat /home/ubuntu/QMS/.env").stdout
        assert box.ssh("stat -c %a /home/ubuntu/QMS/.env").stdout.strip() == "600"
        restarted = fab("-f", conf, "restart")
        assert restarted.returncode == 0 and "/home/ubuntu/QMS/.env changed since it started" in restarted.stdout
    finally:
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
        assert box.fab("git-pull").returncode == 0
        assert_one_line_error(box.fab("deps"), f"the project needs Python >={newer}",
                              f"the server's python3 is {major}.{minor}.")
        pyproject.write_text(original)
        (box.app / "requirements.txt").write_text("django>=5.2,<6\ndjango-cors-headers>=4\n")
        box.publish("requirements.txt at the root, without uvicorn")
        assert box.fab("git-pull").returncode == 0
        assert_one_line_error(fab("-f", root, "deps"), "/home/ubuntu/QMS/.venv/bin/uvicorn is missing",
                              "add uvicorn to your dependencies")
        (box.app / "requirements.txt").write_text("django>=5.2,<6\ndjango-cors-headers>=4\nuvicorn>=0.30\n")
        box.publish("uvicorn")
        for step in ("git-pull", "deps", "service", "restart"):
            result = fab("-f", root, step)
            assert result.returncode == 0, f"{step}: {result.stdout[-2000:]}{result.stderr}"
        assert "ExecStart=/home/ubuntu/QMS/.venv/bin/uvicorn " in box.ssh(
            "cat /etc/systemd/system/qms-backend.service").stdout
        assert get(box, "/api/health/")[0] == 200
    finally:
        (box.app / "requirements.txt").unlink(missing_ok=True)
        pyproject.write_text(original)
        box.publish("back to backend/pyproject.toml")
        for step in ("git-pull", "deps", "service", "restart"):
            assert box.fab(step).returncode == 0, step


def test_a_health_path_the_app_lacks_and_an_unknown_command_name_what_to_change(box, tmp_path):
    elsewhere = tmp_path / "health.yaml"
    elsewhere.write_text(more_settings(box.conf.read_text(), "  smoke:\n    health_path: healthz/\n"))
    assert_one_line_error(fab("-f", elsewhere, "restart"), "runs but /api/healthz/ directly answers 404",
                          "set qms.smoke.health_path", alone=False)
    # manage shows the command's own output, then the error line, which names Django's problem, not its usage hint
    assert_one_line_error(box.fab("manage", "seed_nothing"), "manage.py seed_nothing failed",
                          "Unknown command: 'seed_nothing'", alone=False)
    assert box.fab("restart").returncode == 0
