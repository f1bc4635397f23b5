"""The frontend path end to end on a stand-in of its own, set up by `fab setup`: `upload` ships the local export as a
new whole-app release of the served backend commit (only changed files sent, the rest hard-linked from the served
release, files 644 and directories 755), `releases` lists them, qms.keep_releases prunes them; an export for another
environment is refused; a killed upload (early, mid-stream, an SSH session cut) leaves the previous release serving
and the next upload removes what it left; fix-perms and its check; a dry upload; the one real `next build`; a nested
frontend folder."""
import json
import shutil
import signal
import subprocess
import time

import pytest

from tests.conftest import REPO, assert_one_line_error, fab
from tests.export_fixture import make_export, restamp
from tests.standin.conftest import example_app_module, get, served, stamp_export
from tests.standin.harness import more_settings, project_exe

pytestmark = pytest.mark.standin

APP = "/home/ubuntu/QMS"
SERVED = f"{APP}/frontend/out"   # the guide's path: -> ../current/frontend/out


box = example_app_module("qmsfront", "box")


def out(box):
    return box.app / "frontend" / "out"


def export(box, marker: str, **kw) -> dict:
    """A fresh made-up export in the app's frontend/out (nothing left from the one before)."""
    shutil.rmtree(out(box), ignore_errors=True)
    return stamp_export(box, marker, **kw)


def release_dirs(box) -> dict[str, bool]:
    """Each directory in the releases (dot-names aside), and whether it is sealed (has release.json)."""
    text = box.ssh(f"cd {APP}/releases && for d in *; do test -d \"$d\" || continue; "
                   "test -f \"$d/release.json\" && echo \"$d 1\" || echo \"$d 0\"; done").stdout
    return {name: flag == "1" for name, flag in (line.split() for line in text.splitlines())}


def commit_of(box, rid: str) -> str:
    return json.loads(box.ssh(f"cat {APP}/releases/{rid}/release.json").stdout)["commit"]


def page(box, path="/") -> str:
    code, body = get(box, path)
    assert code == 200, (code, body[:300])
    return body


def upload(box, conf=None):
    result = fab("-f", conf or box.conf, "upload", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    return result


def test_upload_serves_a_new_release_of_the_served_backend_and_sends_only_changes(box):
    before = served(box)
    export(box, "first")   # the pages differ from setup's export, the chunks do not
    first = upload(box)
    assert "sent 4 files (" in first.stdout and "reused 4 unchanged files" in first.stdout, first.stdout
    assert "QMS frontend first" in page(box) and "QMS frontend first" in page(box, "/admin/users")
    first_id = served(box)
    assert first_id != before and commit_of(box, first_id) == commit_of(box, before)   # the backend kept
    assert get(box, "/api/health/")[0] == 200

    index = out(box) / "index.html"
    index.write_text(index.read_text().replace("first", "second"))
    restamp(out(box))
    second = upload(box)
    assert "sent 1 file (" in second.stdout and "reused 7 unchanged files" in second.stdout, second.stdout
    assert "QMS frontend second" in page(box)
    second_id = served(box)
    assert second_id != first_id
    # the unchanged files are the previous release's (one inode, hard-linked), the changed one a new file
    inodes = box.ssh(f"stat -c %i {APP}/releases/{first_id}/frontend/out/login.html {SERVED}/login.html "
                     f"{APP}/releases/{first_id}/frontend/out/index.html {SERVED}/index.html").stdout.split()
    assert inodes[0] == inodes[1] and inodes[2] != inodes[3], inodes
    modes = box.ssh(f"cd -P {SERVED} && find . -type f ! -perm 644 | wc -l; find . -type d ! -perm 755 | wc -l; "
                    "stat -c %a index.html _next/static/chunks/pages").stdout.split()
    assert modes == ["0", "0", "644", "755"], modes

    releases_before = release_dirs(box)
    again = upload(box)
    assert f"release {second_id} already serves this commit and export: nothing to ship" in again.stdout
    assert served(box) == second_id and release_dirs(box) == releases_before

    listing = box.fab("releases")
    assert listing.returncode == 0, listing.stderr
    marked = [line for line in listing.stdout.splitlines() if "*" in line]
    assert len(marked) == 1 and second_id in marked[0] and "standin" in marked[0], listing.stdout
    assert first_id in listing.stdout and before in listing.stdout


def test_old_releases_are_pruned_to_keep_releases_never_the_served_one(box):
    keep = box.tmp / "keep.yaml"
    keep.write_text(more_settings(box.conf.read_text(), "  keep_releases: 2\n"))
    for n in range(3):
        export(box, f"prune{n}")
        result = upload(box, keep)
    assert "(qms.keep_releases: 2)" in result.stdout, result.stdout
    releases = release_dirs(box)
    assert len(releases) == 2 and all(releases.values()), releases
    assert served(box) in releases and "QMS frontend prune2" in page(box)
    active = box.ssh("systemctl list-units --plain --no-legend --state=active 'qms-backend@*.service' | wc -l")
    assert active.stdout.strip() == "2"   # the served one and the standby: the pruned releases' instances stopped


def test_an_export_for_another_environment_is_refused_and_the_server_is_unchanged(box):
    export(box, "wrong-env", env="production")
    before = (served(box), release_dirs(box))
    result = box.fab("upload")
    assert_one_line_error(result, "built for 'production', not 'standin'", "conf/standin.yaml build")
    assert (served(box), release_dirs(box)) == before
    assert "wrong-env" not in page(box)


def test_a_dry_upload_sends_nothing_and_says_what_it_would_do(box):
    export(box, "before dry")
    upload(box)
    index = out(box) / "index.html"
    index.write_text(index.read_text().replace("before dry", "dry"))
    restamp(out(box))
    rid, snapshot = served(box), box.snapshot()
    result = fab("-f", box.conf, "--dry", "upload")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "would send 1 file (" in result.stdout and "would send index.html" in result.stdout, result.stdout
    assert f"would reuse 7 unchanged files from {rid}" in result.stdout
    assert "upload planned" in result.stdout and "the server was not changed" in result.stdout
    assert box.snapshot() == snapshot
    assert "QMS frontend before dry" in page(box)


def test_fix_perms_opens_a_750_home_for_nginx_without_making_it_listable(box):
    export(box, "perms")
    upload(box)
    box.ssh("sudo chmod 750 /home/ubuntu")
    box.ssh(f"chmod 600 {SERVED}/login.html")
    assert get(box, "/")[0] in (403, 404)

    check = box.fab("fix-perms", "--check")
    assert_one_line_error(check, "permissions need fixing: run fix-perms")
    assert "www-data cannot enter /home/ubuntu" in check.stdout
    assert "entries lack mode 755 (dirs) / 644 (files)" in check.stdout, check.stdout
    assert box.ssh(f"stat -c %a /home/ubuntu {SERVED}/login.html").stdout.split() == ["750", "600"]

    fixed = box.fab("fix-perms")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "nginx reads and serves the site" in fixed.stdout
    assert box.ssh(f"stat -c %a /home/ubuntu {SERVED}/login.html").stdout.split() == ["751", "644"]
    assert "QMS frontend perms" in page(box) and "QMS frontend perms" in page(box, "/login")
    assert get(box, "/api/health/")[0] == 200
    again = box.fab("fix-perms", "--check")
    assert again.returncode == 0 and "permissions ok" in again.stdout, again.stdout + again.stderr


def served_then_big(box, served_marker: str, big_marker: str, seed: int) -> str:
    """Upload a small export (what the site then serves), then make a big one in its place, whose upload lasts
    long enough to be cut; returns the served release."""
    export(box, served_marker)
    upload(box)
    export(box, big_marker, extra_files=400, extra_bytes=120 << 20, seed=seed)
    return served(box)


def receiving(box) -> bool:
    """An upload is streaming into a new release's export."""
    return any((box.root / APP.lstrip("/") / "releases").glob("*/frontend/out.incoming"))


def wait_for(condition, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def lock_is_stale(box) -> bool:
    """The deploy lock is free or its holder (on the killed run's connection) is gone."""
    return box.ssh(f"pid=$(sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p' {APP}/.deploy/lock/owner.json 2>/dev/null); "
                   "test -z \"$pid\" || ! test -d /proc/$pid", check=False).returncode == 0


def settled(box, rid: str) -> bool:
    """No command of the run making release `rid` still runs on the server (the client's death reaches a command
    only when it next reads or writes)."""
    return box.ssh(f"pgrep -f '[{rid[0]}]{rid[1:]}'", check=False).returncode == 1


def test_killed_upload_leaves_the_previous_release_serving_and_the_next_upload_cleans_up(box):
    stable = served_then_big(box, "stable", "big", seed=1)
    left = {}
    for stage in ("early", "mid-stream"):
        known = set(release_dirs(box))
        proc = subprocess.Popen([project_exe("fab"), "-f", str(box.conf), "upload"], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if stage == "early":   # as soon as the new release's directory is made, long before the stream
                wait_for(lambda: set(release_dirs(box)) - known, "the upload never made its release")
            else:
                wait_for(lambda: receiving(box), "the upload never started streaming")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert served(box) == stable
        assert "QMS frontend stable" in page(box) and get(box, "/api/health/")[0] == 200
        left[stage] = {name for name, sealed in release_dirs(box).items() if not sealed} - known
        assert len(left[stage]) == 1, (stage, release_dirs(box))
        wait_for(lambda: settled(box, *left[stage]), "the killed upload's commands still run on the server", 60)
        wait_for(lambda: lock_is_stale(box), "the killed upload's lock holder lives on", 30)
    assert not left["early"] & set(release_dirs(box))   # the second upload removed what the first left
    # what a server that lost power in the middle of an upload keeps
    box.ssh(f"mkdir -p {APP}/releases/20260101-000000-dead000/frontend/out.incoming/x")
    leftovers = {name for name, sealed in release_dirs(box).items() if not sealed}
    assert leftovers == left["mid-stream"] | {"20260101-000000-dead000"}, leftovers

    result = upload(box)
    removed = [line for line in result.stdout.splitlines()
               if "removed unfinished release(s) a failed or killed run left: " in line]
    assert len(removed) == 1 and all(name in removed[0] for name in leftovers), result.stdout
    assert "taking over a stale lock" in result.stdout
    assert "QMS frontend big" in page(box)
    releases = release_dirs(box)
    assert all(releases.values()) and not leftovers & set(releases), releases
    assert not receiving(box) and served(box) != stable


def test_an_ssh_session_killed_in_the_middle_of_an_upload_is_one_line_and_the_site_keeps_serving(box):
    """What a server reboot or a killed sshd does to an upload: the client used to wait for an exit status that
    never comes, at 100% CPU, for ever."""
    stable = served_then_big(box, "before the cut", "cut", seed=2)
    proc = subprocess.Popen([project_exe("fab"), "-f", str(box.conf), "upload"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: receiving(box), "the upload never started streaming", 300)
        # OpenSSH 10 names a session's process sshd-session (trixie), 9.x sshd (bookworm, Ubuntu 24.04); this ssh's
        # own session goes too
        box.ssh("sudo pkill -KILL -f 'sshd(-session)?: ubuntu@notty' || true", check=False)
        out_text, err_text = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, out_text
    assert "Traceback" not in err_text + out_text, err_text
    lines = [line for line in err_text.splitlines() if line.strip()]
    assert len(lines) == 1 and "the connection broke while sending" in lines[0], err_text
    assert served(box) == stable
    assert "QMS frontend before the cut" in page(box)
    upload(box)
    assert "QMS frontend cut" in page(box)
    assert all(release_dirs(box).values())


def test_real_build_bakes_the_settings_api_url_whatever_the_shell_and_env_local_say(box):
    """The one real `npm ci && next build` of the example app, then upload and a GET through nginx."""
    frontend = box.app / "frontend"
    env_local = frontend / ".env.local"
    env_local.write_text("NEXT_PUBLIC_API_URL=http://127.0.0.1:8000/api\n")
    try:
        result = box.fab("build", env={"NEXT_PUBLIC_API_URL": "http://localhost:8000/api"}, timeout=900)
    finally:
        env_local.unlink()
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "NEXT_PUBLIC_API_URL=https://qms.test/api" in result.stdout
    assert ".env.local (http://127.0.0.1:8000/api) is ignored" in result.stdout
    info = json.loads((frontend / "out/build-info.json").read_text())
    assert info["env"] == "standin" and info["api_url"] == "https://qms.test/api"
    assert "admin/users.html" in info["manifest"]

    upload(box)
    assert "QMS frontend v1" in page(box, "/admin/users")


def test_real_build_with_a_local_api_url_is_refused_naming_file_and_text(box):
    conf = box.tmp / "local-api.yaml"
    conf.write_text(more_settings(box.conf.read_text(), "  frontend:\n    api_url: http://127.0.0.1:8000/api\n"))
    result = fab("-f", conf, "build", timeout=900)
    line = assert_one_line_error(result, "the bundle would call the wrong API", "'http://127.0.0.1:8000/api'",
                                 alone=False)
    assert "_next/static/chunks/" in line


def test_a_nested_frontend_folder_is_released_and_served(box):
    """The Next.js app in a folder of a folder (qms.frontend.dir: web/app), as monorepos have it."""
    nested = box.tmp / "nested"
    shutil.copytree(box.app, nested, ignore=shutil.ignore_patterns(".git", "node_modules", ".next", "out"))
    (nested / "web").mkdir()
    (nested / "frontend").rename(nested / "web" / "app")
    conf = box.tmp / "nested.yaml"
    conf.write_text(more_settings(box.conf.read_text(), f"  app_dir: {nested}\n  frontend:\n    dir: web/app\n"))
    make_export(nested / "web/app/out", marker="nested")
    try:
        result = upload(box, conf)
        assert "sent 8 files (" in result.stdout, result.stdout   # the served release has no web/app/out
        perms = fab("-f", conf, "fix-perms", "--check")
        assert perms.returncode == 0, perms.stdout + perms.stderr
        assert "QMS frontend nested" in page(box) and "QMS frontend nested" in page(box, "/admin/users")
        rid = served(box)
        assert box.ssh(f"readlink -f {APP}/web/app/out").stdout.strip() == f"{APP}/releases/{rid}/web/app/out"
    finally:   # the module's own layout served again
        export(box, "back")
        upload(box)
    assert "QMS frontend back" in page(box)
