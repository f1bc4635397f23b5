"""What the server answers is data, never an option or shell text: commits read from a (broken or hostile) server
reach git here and there only as revisions. The "server" is this machine's shell, with a git that answers what
such a server would."""
import os
import subprocess

import invoke

from tasks.core.host import Host
from tasks.core.settings import defaults, resolve
from tasks.deploy import show_commits


def local_host(tmp_path, fake_git: str = "") -> Host:
    """This machine in the server's place; `fake_git`: a shell script run as the server's git."""
    bin_dir = tmp_path / "server-bin"
    bin_dir.mkdir()
    (bin_dir / "sudo").write_text('#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n')   # the tests run as root
    if fake_git:
        (bin_dir / "git").write_text("#!/bin/sh\n" + fake_git)
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    here = invoke.Context(invoke.Config(overrides={"run": {"env": {"PATH": f"{bin_dir}:{os.environ['PATH']}"}}}))
    here.original_host = here.host = "server"
    return Host(here, dry=False, owner="root")


def app_repo(tmp_path):
    repo = tmp_path / "app"
    repo.mkdir()
    for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "one"],
                 ["commit", "-q", "--allow-empty", "-m", "two"]):
        subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True)
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    return repo, head.strip()


def settings(repo):
    return resolve([], {**defaults(), "app_dir": str(repo), "app_root": str(repo)}, None)


def test_a_server_head_that_looks_like_an_option_writes_no_file_here(tmp_path, capsys):
    repo, sha = app_repo(tmp_path)
    trap = tmp_path / "written-by-git"
    # the served release's commit, as its release.json on the server says
    show_commits(settings(repo), local_host(tmp_path), f"--output={trap}", sha)
    assert list(tmp_path.glob("written-by-git*")) == []
    assert f"backend: --outpu -> {sha[:7]}, 0 commit(s):" in capsys.readouterr().out
