"""The frontend path end to end on the stand-in: build, upload as atomic releases, releases, fix-perms."""
import shutil
import signal
import subprocess
import time

import pytest

from tests.conftest import REPO, assert_one_line_error, fab
from tests.export_fixture import make_export, restamp
from tests.standin.harness import project_exe, standin_settings

pytestmark = pytest.mark.standin

SERVED = "/home/ubuntu/QMS/frontend/out"


@pytest.fixture
def app(standin, tmp_path):
    """A settings file whose app_dir is a scratch copy of the example app (its frontend export is ours to make)."""
    app_dir = tmp_path / "app"
    (app_dir / "frontend").mkdir(parents=True)
    shutil.copy(REPO / "tests/example_app/frontend/package.json", app_dir / "frontend")
    conf = tmp_path / "standin.yaml"
    conf.write_text(standin_settings(standin.name, app_dir=app_dir))
    return conf, app_dir / "frontend" / "out"


def site(standin, path="/"):
    """GET through nginx on the stand-in, from this machine, as a browser of qms.test would."""
    result = subprocess.run(["curl", "-s", "--noproxy", "*", "-H", "Host: qms.test", "-w", "\n%{http_code}",
                             f"http://{standin.address}{path}"], capture_output=True, text=True, timeout=30)
    body, _, code = result.stdout.rpartition("\n")
    return int(code or 0), body


@pytest.fixture
def served(standin):
    """The stand-in with the site installed in nginx and the home directory traversable."""
    assert standin.fab("prepare").returncode == 0
    result = standin.fab("nginx-reload")
    assert result.returncode == 0, result.stderr
    standin.ssh("sudo chmod 751 /home/ubuntu")
    return standin


def test_upload_serves_the_new_release_and_sends_only_changes(served, app):
    conf, out = app
    make_export(out, marker="first")
    first = fab("-f", conf, "upload")
    assert first.returncode == 0, first.stderr
    assert site(served) == (200, site(served)[1]) and "QMS frontend first" in site(served)[1]
    assert site(served, "/admin/users")[0] == 200

    (out / "index.html").write_text((out / "index.html").read_text().replace("first", "second"))
    restamp(out)
    second = fab("-f", conf, "upload")
    assert second.returncode == 0, second.stderr
    assert "sent 1 file (" in second.stdout and "reused 7 unchanged files" in second.stdout
    assert "QMS frontend second" in site(served)[1]
    # the unchanged files are shared with the previous release, not copies
    links = served.ssh(f"stat -L -c %h {SERVED}/login.html").stdout.strip()
    assert int(links) >= 2
    modes = served.ssh(f"find -L {SERVED}/ -perm /022 | wc -l; stat -L -c %a {SERVED}/index.html").stdout.split()
    assert modes == ["0", "644"]

    again = fab("-f", conf, "upload")
    assert again.returncode == 0 and "nothing to upload" in again.stdout

    listing = fab("-f", conf, "releases")
    assert listing.returncode == 0
    current = [line for line in listing.stdout.splitlines() if "*" in line]
    assert len(current) == 1 and "standin" in current[0]


def test_old_releases_are_pruned(served, app, tmp_path):
    conf, out = app
    keep = tmp_path / "keep.yaml"
    keep.write_text(conf.read_text().replace("qms:\n", "qms:\n  frontend:\n    keep_releases: 2\n"))
    for n in range(4):
        shutil.rmtree(out, ignore_errors=True)
        make_export(out, marker=f"prune{n}")
        assert fab("-f", keep, "upload").returncode == 0
    names = served.ssh("ls /home/ubuntu/QMS/frontend/releases").stdout.split()
    assert len(names) == 2 and "QMS frontend prune3" in site(served)[1]


def test_an_export_for_another_environment_is_refused(served, app):
    conf, out = app
    shutil.rmtree(out, ignore_errors=True)
    make_export(out, env="production", marker="wrong-env")
    before = served.ssh(f"readlink {SERVED}", check=False).stdout
    result = fab("-f", conf, "upload")
    assert_one_line_error(result, "built for 'production', not 'standin'", "conf/standin.yaml build")
    assert served.ssh(f"readlink {SERVED}", check=False).stdout == before


def served_then_big(served, conf, out, served_marker: str, big_marker: str, seed: int) -> str:
    """Upload a small export (what the site then serves), then make a big one in its place, whose upload lasts
    long enough to be cut; returns the served release."""
    shutil.rmtree(out, ignore_errors=True)
    make_export(out, marker=served_marker)
    assert fab("-f", conf, "upload").returncode == 0
    shutil.rmtree(out)
    make_export(out, marker=big_marker, extra_files=400, extra_bytes=120 << 20, seed=seed)
    return served.ssh(f"readlink {SERVED}").stdout.strip()


def receiving(served) -> bool:
    """An upload is streaming into the server's releases."""
    releases = served.root / "home/ubuntu/QMS/frontend/releases"
    return any(p.name.startswith(".incoming-") for p in releases.iterdir())


def test_killed_upload_leaves_the_previous_release_serving_and_the_next_upload_cleans_up(served, app):
    conf, out = app
    stable = served_then_big(served, conf, out, "stable", "big", seed=1)
    for delay in (0.3, None):   # early (before the stream), and in the middle of the stream
        proc = subprocess.Popen([project_exe("fab"), "-f", str(conf), "upload"], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if delay is None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not receiving(served):
                time.sleep(0.02)
            assert receiving(served), "the upload never started streaming"
        else:
            time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert served.ssh(f"readlink {SERVED}").stdout.strip() == stable
        code, body = site(served)
        assert code == 200 and "QMS frontend stable" in body
    # what a server that lost power in the middle of an upload keeps
    served.ssh("mkdir -p /home/ubuntu/QMS/frontend/releases/.incoming-20260101-000000-dead/x")

    result = fab("-f", conf, "upload")
    assert result.returncode == 0, result.stderr
    assert "QMS frontend big" in site(served)[1]
    assert not receiving(served)


def test_fix_perms_opens_a_750_home_for_nginx_without_making_it_listable(served, app):
    conf, out = app
    shutil.rmtree(out, ignore_errors=True)
    make_export(out, marker="perms")
    assert fab("-f", conf, "upload").returncode == 0
    served.ssh("sudo chmod 750 /home/ubuntu")
    assert site(served)[0] in (403, 404)

    check = fab("-f", conf, "fix-perms", "--check")
    assert check.returncode == 1 and "www-data cannot enter /home/ubuntu" in check.stdout
    assert served.ssh("stat -c %a /home/ubuntu").stdout.strip() == "750"

    fixed = fab("-f", conf, "fix-perms")
    assert fixed.returncode == 0, fixed.stderr
    assert "nginx reads and serves the site" in fixed.stdout
    assert served.ssh("stat -c %a /home/ubuntu").stdout.strip() == "751"
    code, body = site(served)
    assert code == 200 and "QMS frontend perms" in body
    assert fab("-f", conf, "fix-perms", "--check").returncode == 0


def test_real_build_bakes_the_settings_api_url_whatever_the_shell_and_env_local_say(served, tmp_path):
    """The one real `npm ci && next build` of the example app, then upload and a GET through nginx."""
    frontend = REPO / "tests/example_app/frontend"
    env_local = frontend / ".env.local"
    env_local.write_text("NEXT_PUBLIC_API_URL=http://127.0.0.1:8000/api\n")
    try:
        result = served.fab("build", env={"NEXT_PUBLIC_API_URL": "http://localhost:8000/api"}, timeout=900)
    finally:
        env_local.unlink()
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "NEXT_PUBLIC_API_URL=https://qms.test/api" in result.stdout
    assert ".env.local (http://127.0.0.1:8000/api) is ignored" in result.stdout
    info = __import__("json").loads((frontend / "out/build-info.json").read_text())
    assert info["env"] == "standin" and info["api_url"] == "https://qms.test/api"
    assert "admin/users.html" in info["manifest"]

    uploaded = served.fab("upload")
    assert uploaded.returncode == 0, uploaded.stderr
    code, body = site(served, "/admin/users")
    assert code == 200 and "QMS frontend v1" in body


def test_real_build_with_a_local_api_url_is_refused_naming_file_and_text(standin, tmp_path):
    conf = tmp_path / "local-api.yaml"
    conf.write_text(standin.conf.read_text().replace(
        "qms:\n", "qms:\n  frontend:\n    api_url: http://127.0.0.1:8000/api\n"))
    result = fab("-f", conf, "build", timeout=900)
    line = assert_one_line_error(result, "the bundle would call the wrong API", "'http://127.0.0.1:8000/api'",
                                 alone=False)
    assert "_next/static/chunks/" in line


def test_a_dry_upload_sends_nothing_and_says_what_it_would_do(served, app):
    conf, out = app
    shutil.rmtree(out, ignore_errors=True)
    make_export(out, marker="dry")
    before = served.snapshot()
    result = fab("-f", conf, "--dry", "upload")
    assert result.returncode == 0, result.stderr
    assert "would send 8 files" in result.stdout and "would reuse" in result.stdout
    assert served.snapshot() == before
    assert "QMS frontend dry" not in site(served)[1]


def test_a_nested_frontend_folder_is_released_and_served(served, tmp_path):
    """The Next.js app in a folder of a folder (qms.frontend.dir: web/app), as monorepos have it."""
    app_dir = tmp_path / "app"
    (app_dir / "web/app").mkdir(parents=True)
    shutil.copy(REPO / "tests/example_app/frontend/package.json", app_dir / "web/app")
    conf = tmp_path / "nested.yaml"
    conf.write_text(standin_settings(served.name, app_dir=app_dir, extra="  frontend:\n    dir: web/app\n"))
    make_export(app_dir / "web/app/out", marker="nested")
    try:
        for step in ("prepare", "upload", "nginx-reload", "fix-perms"):
            result = fab("-f", conf, step)
            assert result.returncode == 0, f"{step}: {result.stdout[-2000:]}{result.stderr}"
        code, body = site(served)
        assert code == 200 and "QMS frontend nested" in body
        assert served.ssh("readlink -f /home/ubuntu/QMS/web/app/out").stdout.startswith(
            "/home/ubuntu/QMS/web/app/releases/")
    finally:
        assert served.fab("nginx-reload").returncode == 0


def test_an_ssh_session_killed_in_the_middle_of_an_upload_is_one_line_and_the_site_keeps_serving(served, app):
    """What a server reboot or a killed sshd does to an upload: the client used to wait for an exit status that
    never comes, at 100% CPU, for ever."""
    conf, out = app
    stable = served_then_big(served, conf, out, "before the cut", "cut", seed=2)
    proc = subprocess.Popen([project_exe("fab"), "-f", str(conf), "upload"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not receiving(served):
        time.sleep(0.02)
    # OpenSSH 10 names a session's process sshd-session (trixie), 9.x sshd (bookworm, Ubuntu 24.04); this ssh's
    # own session goes too
    served.ssh("sudo pkill -KILL -f 'sshd(-session)?: ubuntu@notty' || true", check=False)
    out_text, err_text = proc.communicate(timeout=120)
    assert proc.returncode != 0, out_text
    assert "Traceback" not in err_text
    lines = [line for line in err_text.splitlines() if line.strip()]
    assert len(lines) == 1 and "the connection broke while sending" in lines[0], err_text
    assert served.ssh(f"readlink {SERVED}").stdout.strip() == stable
    assert "QMS frontend before the cut" in site(served)[1]
    again = fab("-f", conf, "upload")
    assert again.returncode == 0, again.stderr
    assert "QMS frontend cut" in site(served)[1]
