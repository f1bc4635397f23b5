"""setup, deploy, rollback, the lock and the plan, end to end on one fresh stand-in, in the order a team meets them:
first deploy, daily updates, a plan, two deploys at once, a killed deploy, a broken commit, rollbacks."""
import json
import os
import re
import shutil
import signal
import subprocess
import threading
from pathlib import Path
import time
from collections import Counter

import pytest

from tests.conftest import KOREAN_LOCALE, REPO, assert_one_line_error, fab, run_tool
from tests.standin.app_changes import add_field, add_owner_field_and_endpoint, break_health, set_backend_version, \
    set_frontend_title
from tests.standin.conftest import get, make_standin, remove_standin, with_example_app
from tests.standin.harness import project_exe

pytestmark = pytest.mark.standin

PASSWORD = 'pa$$ "w#rd x'    # every character the .env and the shell could get wrong
PACKAGES = "[nginx, certbot, python3-venv, sqlite3, git, curl, ca-certificates, jq]"   # jq: not in the image


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A fresh stand-in (no uv, no clone, no site) and the team's working copy of the example app."""
    tmp = tmp_path_factory.mktemp("chains")
    s = with_example_app(make_standin("qmschain", tmp), tmp, settings=f"  setup:\n    packages: {PACKAGES}\n",
                         secrets=f"DJANGO_SUPERUSER_PASSWORD={PASSWORD}\n")
    s.tmp = tmp
    yield s
    remove_standin(s)


def commit(site, message: str) -> None:
    """Commit in the working copy without pushing: deploy's preflight decides what happens next."""
    subprocess.run(["git", "-C", str(site.app), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(site.app), "-c", "user.name=dev", "-c", "user.email=dev@qms.test", "commit",
                    "-q", "-m", message], check=True)


def history(site) -> list[dict]:
    text = site.ssh("cat /home/ubuntu/QMS/.deploy/history.jsonl").stdout
    return [json.loads(line) for line in text.splitlines()]


def title(site) -> str:
    """The home page's title, as nginx serves it."""
    code, page = get(site, "/")
    assert code == 200, page
    return re.search(r"<title[^>]*>([^<]*)</title>", page).group(1)


def health(site) -> dict:
    code, body = get(site, "/api/health/")
    assert code == 200, body
    return json.loads(body)


def test_setup_takes_a_fresh_server_to_https_and_a_second_run_changes_nothing(site):
    assert site.ssh("command -v jq", check=False).returncode != 0
    started = time.monotonic()
    first = site.fab("setup", timeout=1800)
    first_seconds = time.monotonic() - started
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr
    assert title(site) == "QMS"
    assert health(site)["database"] == "ok"
    code, defects = get(site, "/api/defects/")
    assert code == 200 and len(json.loads(defects)) == 4              # seed_defect_data ran
    assert site.ssh("stat -c %a /home/ubuntu/QMS/shared/.env").stdout.strip() == "600"
    assert site.ssh("command -v jq", check=False).returncode == 0     # the missing package was installed
    assert "uv is not on the server: installing it from PyPI" in first.stdout
    assert PASSWORD not in first.stdout + first.stderr
    # the superuser got the password from the secrets file, intact
    given = site.root / "home/ubuntu/given-password"
    given.write_text(PASSWORD)
    try:
        check = site.fab("manage", "shell -c \"from django.contrib.auth.models import User; print(User.objects.get("
                                   "username='admin').check_password(open('/home/ubuntu/given-password').read()))\"")
    finally:
        given.unlink()
    assert check.returncode == 0 and check.stdout.strip().endswith("True"), check.stdout + check.stderr

    started = time.monotonic()
    second = site.fab("setup", timeout=600)
    second_seconds = time.monotonic() - started
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr
    assert "setup ok" in second.stdout and "nothing changed" in second.stdout
    assert "already serves this commit and export: nothing to ship" in second.stdout
    print(f"setup: first {first_seconds:.1f} s, second {second_seconds:.1f} s")
    assert second_seconds < first_seconds / 3
    assert [e["action"] for e in history(site)] == ["setup", "setup"]


def test_deploy_needs_the_commit_on_the_remote_then_ships_frontend_backend_and_migration(site):
    (site.app / "frontend" / "scratch.txt").write_text("not committed\n")
    assert_one_line_error(site.fab("deploy"), "has uncommitted changes (frontend/scratch.txt)",
                          "a deploy ships commits")
    (site.app / "frontend" / "scratch.txt").unlink()
    set_frontend_title(site.app, "QMS v2")
    add_owner_field_and_endpoint(site.app)
    set_backend_version(site.app, "2")
    commit(site, "v2: title, owners, version")
    assert_one_line_error(site.fab("deploy"), "is not on standin/main, which the server pulls", "deploy --push")
    before = health(site)["migrations"]

    result = site.fab("deploy", "--push", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert title(site) == "QMS v2"
    assert get(site, "/api/owners/")[0] == 200
    assert json.loads(get(site, "/api/version/")[1]) == {"version": "2"}
    assert health(site)["migrations"] == before + 1
    for step in ("build", "upload", "git-pull", "release", "deps", "migrate", "start", "switch", "smoke", "retire"):
        assert f"│ {step}" in result.stdout          # the summary: every step with its time
    assert "migrations applied: quality.0002_defect_owner, after backup" in result.stdout
    last = history(site)[-1]
    assert last["action"] == "deploy" and last["result"] == "ok" and last["backup"].endswith("-pre-migrate")
    listed = site.fab("history")
    assert listed.returncode == 0 and last["id"] in listed.stdout and "deploy" in listed.stdout


def test_a_plan_changes_nothing_and_shows_diffs_commits_migrations_and_files(site):
    set_frontend_title(site.app, "QMS v3")
    add_field(site.app, "area", "0003_defect_area", "0002_defect_owner")
    commit(site, "v3: area")
    wider = site.tmp / "plan.yaml"
    wider.write_text(site.conf.read_text().replace("qms:\n", "qms:\n  nginx:\n    client_max_body_size: 20m\n"))
    before = site.snapshot()

    result = fab("-f", wider, "deploy", "--plan", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert site.snapshot() == before
    assert re.search(r"deploy planned in [\d.]+ s: the server was not changed", result.stdout)
    for step in ("build", "env", "git-pull", "release", "deps", "upload", "app-settings", "migrate", "collectstatic",
                 "seal", "service", "start", "switch", "nginx-reload", "smoke", "retire"):
        assert f"== {step}\n" in result.stdout
    assert "lock: free" in result.stdout
    assert re.search(r"note: \w{7} is not on standin/main: the deploy would refuse it", result.stdout)
    pushing = fab("-f", wider, "deploy", "--plan", "--push", timeout=900)
    assert pushing.returncode == 0 and re.search(r"would push \w{7} to standin/main", pushing.stdout)
    subprocess.run(["git", "-C", str(site.app), "push", "-q", "standin", "HEAD:main"], check=True)
    assert "v3: area" in result.stdout                                         # the commits it would bring
    assert "new migrations: backend/quality/migrations/0003_defect_area.py" in result.stdout
    assert "would send index.html" in result.stdout                           # the upload's files
    assert re.search(r"^-\s+client_max_body_size 10m;", result.stdout, re.M)    # the nginx site's diff
    assert re.search(r"^\+\s+client_max_body_size 20m;", result.stdout, re.M)
    assert title(site) == "QMS v2"
    dry = fab("--dry", "-f", site.conf, "deploy", timeout=900)                 # fab --dry is the same plan
    assert dry.returncode == 0 and "== smoke" in dry.stdout and site.snapshot() == before


def wait_for_lock(site, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = site.ssh("cat /home/ubuntu/QMS/.deploy/lock/owner.json", check=False)
        if found.returncode == 0 and found.stdout.strip():
            return json.loads(found.stdout)
        time.sleep(0.2)
    raise AssertionError(f"the first deploy never took the lock: {(site.tmp / 'killed-deploy.log').read_text()}")


def background_deploy(site, name: str, *args) -> tuple[subprocess.Popen, Path]:
    log = site.tmp / f"{name}.log"
    with open(log, "w") as out:
        process = subprocess.Popen([project_exe("fab"), "-f", str(site.conf), "deploy", *args], stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, cwd=REPO)
    return process, log


def test_one_deploy_at_a_time_a_waiting_one_and_a_killed_deploys_stale_lock(site):
    shutil.rmtree(site.app / "frontend" / "out")   # the plan built v3 already: a build keeps this deploy going
    first, _ = background_deploy(site, "killed-deploy")
    try:
        owner = wait_for_lock(site)
        refused = site.fab("deploy")
        line = assert_one_line_error(refused, "another deploy by", "holds the deploy lock", f"pid {first.pid}",
                                     "since", "deploy --wait SECONDS")
        assert "at step" in line
        assert_one_line_error(site.fab("unlock"), "belongs to a running deploy")
        waiter, waiter_log = background_deploy(site, "waiting-deploy", "--wait", "300")
        deadline = time.monotonic() + 60
        while "waiting up to 300 s for the deploy lock" not in waiter_log.read_text():
            assert time.monotonic() < deadline and waiter.poll() is None, waiter_log.read_text()
            time.sleep(0.2)
    finally:
        os.killpg(first.pid, signal.SIGKILL)          # the deploy dies without a word: no release
        first.wait()
    assert owner["client_pid"] == first.pid

    assert waiter.wait(timeout=900) == 0, waiter_log.read_text()[-3000:]
    taken = waiter_log.read_text()
    assert "taking over a stale lock: deploy by" in taken and f"(pid {first.pid})" in taken
    assert site.ssh("test -d /home/ubuntu/QMS/.deploy/lock", check=False).returncode != 0
    assert title(site) == "QMS v3"


def test_a_commit_that_breaks_the_app_is_rolled_back_by_itself_while_the_site_answers(site):
    break_health(site.app)
    commit(site, "broken health")
    counts, stop = Counter(), threading.Event()

    def watch():
        while not stop.is_set():
            for path in ("/", "/api/version/"):
                counts[(path, get(site, path)[0])] += 1
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = site.fab("deploy", "--push", timeout=900)
    finally:
        stop.set()
        watcher.join()
    # stdout carries the journal tail, the app's own traceback included: only stderr must be our one line
    journal_aside = subprocess.CompletedProcess(result.args, result.returncode, "", result.stderr)
    # the new release started beside the served one and failed there: it never served a request
    assert_one_line_error(journal_aside, "is not healthy", "/api/health/", "was discarded: the site still serves")
    assert "RuntimeError: broken on purpose" in result.stdout                  # the journal tail
    print(f"requests during the failed deploy: {dict(counts)}")
    assert {code for (_, code) in counts} == {200}, counts
    assert health(site)["status"] == "ok" and title(site) == "QMS v3"
    assert history(site)[-1]["result"] == "failed" and history(site)[-1]["failed_step"] == "start"
    subprocess.run(["git", "-C", str(site.app), "revert", "--no-edit", "HEAD"], check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "GIT_AUTHOR_NAME": "dev", "GIT_AUTHOR_EMAIL": "d@q", "GIT_COMMITTER_NAME": "dev",
                        "GIT_COMMITTER_EMAIL": "d@q"})


def test_rollback_goes_back_a_deploy_and_restore_db_takes_the_database_back_too(site):
    migrations = health(site)["migrations"]
    back = site.fab("rollback", timeout=600)
    assert back.returncode == 0, back.stdout[-3000:] + back.stderr
    assert title(site) == "QMS v2" and get(site, "/api/owners/")[0] == 200
    assert health(site)["migrations"] == migrations                           # the database is left alone

    forward = site.fab("rollback", "--to", next(e["id"] for e in reversed(history(site))
                                                if e["action"] == "deploy" and e["result"] == "ok"))
    assert forward.returncode == 0 and title(site) == "QMS v3"
    # offline: git and uv unusable on the server, and its way to the package registries and the git remote (the
    # stand-in's proxy and git daemon, on this machine) frozen: a rollback that needed any of them would fail or hang
    site.ssh("sudo chmod 000 /opt/uv/bin/uv /usr/bin/git")
    frozen = [int((site.dir / name).read_text()) for name in ("tinyproxy.pid", "gitd.pid")]
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        offline = site.fab("rollback", timeout=600)
        assert offline.returncode == 0, offline.stdout[-3000:] + offline.stderr
        assert title(site) == "QMS v2"
        assert site.fab("rollback", "--to", forward_release(site)).returncode == 0 and title(site) == "QMS v3"
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
        site.ssh("sudo chmod 755 /opt/uv/bin/uv /usr/bin/git", check=False)

    with_db = site.fab("rollback", "--restore-db", timeout=600)
    assert with_db.returncode == 0, with_db.stdout[-3000:] + with_db.stderr
    assert "warning: restoring the database to backup" in with_db.stdout
    assert title(site) == "QMS v2"
    assert health(site)["migrations"] == migrations - 1                       # 0003_defect_area undone
    assert_one_line_error(site.fab("rollback", "--to", "nonsense"), "nonsense is neither a release on the server")


def forward_release(site) -> str:
    """The newest sealed release: where a test that rolled back goes forward to again."""
    return site.ssh("cd ~/QMS/releases && ls -t */release.json | head -1 | cut -d/ -f1").stdout.strip()


def test_a_changed_env_reaches_the_new_release(site):
    extra = site.tmp / "extra-env.yaml"
    extra.write_text(site.conf.read_text().replace(
        "qms:\n", "qms:\n  backend:\n    env:\n      QMS_BANNER: 'a b $c'\n"))
    result = fab("-f", extra, "deploy", "--push", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert re.search(r"│ env\s+│[^│]+│ \.env keys: QMS_BANNER", result.stdout)
    assert 'QMS_BANNER="a b $c"' in site.ssh("sudo cat /home/ubuntu/QMS/shared/.env").stdout
    shown = fab("-f", extra, "manage", "shell -c \"import os; print(os.environ['QMS_BANNER'])\"")
    assert "a b $c" in shown.stdout


def test_a_deploy_with_nothing_new_ships_nothing_and_a_new_env_restarts_the_served_release(site):
    served = site.ssh("readlink ~/QMS/current").stdout
    extra = site.tmp / "extra-env.yaml"
    again = fab("-f", extra, "deploy", timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr
    assert "already serves this commit and export: nothing to ship" in again.stdout
    assert site.ssh("readlink ~/QMS/current").stdout == served
    changed = site.tmp / "changed-env.yaml"
    changed.write_text(site.conf.read_text().replace(
        "qms:\n", "qms:\n  backend:\n    env:\n      QMS_BANNER: 'changed'\n"))
    restarted = fab("-f", changed, "deploy", timeout=900)
    assert restarted.returncode == 0, restarted.stdout[-3000:] + restarted.stderr
    assert re.search(r"│ restart\s+│[^│]+│ restarted", restarted.stdout)
    assert site.ssh("readlink ~/QMS/current").stdout == served
    assert "changed" in fab("-f", changed, "manage", "shell -c \"import os; print(os.environ['QMS_BANNER'])\"").stdout
    assert fab("-f", extra, "deploy", timeout=900).returncode == 0


def test_a_plan_on_a_korean_code_page_shows_korean_commits_and_server_files(site):
    """The plan of a Korean developer's deploy, run on the legacy code page (Korean Windows' cp949; EUC-KR here):
    a Korean commit subject, a Hangul file name, and an nginx site whose text on the server is Korean."""
    commented = lambda name, text: (site.tmp / name).write_text(site.conf.read_text().replace(
        "qms:\n", f"qms:\n  nginx:\n    server_extra: '# {text}'\n"), encoding="utf-8")
    commented("korean-1.yaml", "관리자 페이지 규칙")
    commented("korean-2.yaml", "관리자 페이지 규칙 (수정)")
    try:
        assert fab("-f", site.tmp / "korean-1.yaml", "nginx-reload").returncode == 0
        (site.app / "품질보고서.md").write_text("# 품질 보고서\n", encoding="utf-8")
        commit(site, "로그인 버그 수정")
        result = run_tool("fab", "-f", site.tmp / "korean-2.yaml", "deploy", "--plan", locale=KOREAN_LOCALE,
                          timeout=900)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr
        assert "Traceback" not in result.stderr
        assert "로그인 버그 수정" in result.stdout                                   # the commit it would bring
        assert re.search(r"^-\s+# 관리자 페이지 규칙$", result.stdout, re.M)         # the server's file, as it is
        assert re.search(r"^\+\s+# 관리자 페이지 규칙 \(수정\)$", result.stdout, re.M)
    finally:
        assert fab("-f", site.conf, "nginx-reload").returncode == 0
        subprocess.run(["git", "-C", str(site.app), "push", "-q", "standin", "HEAD:main"], check=True)


def test_setup_asks_for_a_certificate_only_once_the_domains_reach_the_server(site):
    strict = site.tmp / "reachability.yaml"
    strict.write_text(site.conf.read_text().replace("reachability_check: false", "reachability_check: true"))
    result = fab("-f", strict, "setup", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "no certificate yet: qms.test, www.qms.test does not reach this server over HTTP" in result.stdout
