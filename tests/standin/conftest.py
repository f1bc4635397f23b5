"""A fresh stand-in server for each test session (scripts/standin up --fresh), and ways to reach it."""
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from fabric import Config, Connection

from tasks.core.host import Host, known_hosts_files, secure
from tests.conftest import REPO, fab
from tests.export_fixture import make_export
from tests.standin.harness import STATE, more_settings, project_exe, standin_cmd, standin_settings

@dataclass
class Standin:
    name: str
    dir: Path
    conf: Path          # a settings file for this stand-in (conf/standin.yaml pointed at it)

    @property
    def ssh_config(self) -> Path:
        return self.dir / "ssh_config"

    @property
    def root(self) -> Path:
        """The stand-in's file system as seen from this machine."""
        return self.dir / "root"

    @property
    def address(self) -> str:
        return next(line.split()[1] for line in self.ssh_config.read_text().splitlines()
                    if line.strip().startswith("HostName"))

    def ssh(self, command: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a command on the stand-in as ubuntu, independently of the code under test."""
        result = subprocess.run(["ssh", "-F", str(self.ssh_config), self.name, command],
                                capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"{command!r} failed on the stand-in: {result.stderr}")
        return result

    def fab(self, *args, **kw) -> subprocess.CompletedProcess:
        return fab("-f", self.conf, *args, **kw)

    def host(self, dry: bool = False) -> Host:
        """A host-layer object connected to the stand-in, for tests of the layer itself."""
        config = Config(runtime_ssh_path=str(self.ssh_config))
        config.load_ssh_config()
        conn = Connection(self.name, config=config)
        secure(conn, known_hosts_files(conn, None), accept_new=False)
        return Host(conn, dry=dry, owner="ubuntu").open()

    def snapshot(self) -> dict:
        """mode, owner, size and mtime of every file that a deploy could touch (logs and runtime state aside)."""
        skip = {"proc", "sys", "dev", "run", "var/log", "var/lib/systemd", "var/lib/sudo", "var/cache", "tmp/.X11-unix"}
        out = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel = os.path.relpath(dirpath, self.root)
            dirnames[:] = [d for d in dirnames if os.path.normpath(os.path.join(rel, d)) not in skip]
            for entry in dirnames + filenames:
                path = os.path.join(dirpath, entry)
                st = os.lstat(path)
                out[os.path.relpath(path, self.root)] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns)
        return out


def session_name(base: str) -> str:
    """Stand-ins are named per test session, so that two suites on one machine never power off each other's."""
    return f"{base}{os.getpid() % 100000}"


def make_standin(base: str, tmp: Path) -> Standin:
    if os.geteuid() != 0 or not shutil.which("systemd-nspawn"):
        pytest.fail("the stand-in tests need root and systemd-nspawn: run scripts/test (or pytest -m 'not standin')")
    name = session_name(base)
    standin_cmd("up", "--fresh", "--name", name)
    directory = STATE / name
    conf = tmp / f"{name}.yaml"
    conf.write_text(standin_settings(name))
    return Standin(name, directory, conf)


def remove_standin(s: Standin) -> None:
    standin_cmd("down", "--name", s.name, check=False)
    shutil.rmtree(s.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def standin(tmp_path_factory):
    """One fresh stand-in for the session; powered off and removed at the end."""
    s = make_standin("qmstest", tmp_path_factory.mktemp("standin"))
    yield s
    remove_standin(s)



def with_example_app(s: Standin, tmp: Path, settings: str = "", secrets: str = "",
                     source: Path = REPO / "tests/example_app") -> Standin:
    """Give stand-in `s` the team's side: a git working copy of an example app (`s.app`, from `source`;
    node_modules linked from the repo's copy, so real builds need no `npm ci`) pushed to the remote it pulls from,
    a secrets file and settings pointing at both. `s.publish(message)` commits every change and pushes it."""
    s.app = tmp / "app"
    shutil.copytree(source, s.app, ignore=shutil.ignore_patterns("node_modules", ".next", "out"))
    modules = source / "frontend/node_modules"
    if modules.is_dir():
        (s.app / "frontend" / "node_modules").symlink_to(modules)
    s.secrets = tmp / "standin.env"
    s.secrets.write_text("SECRET_KEY=test-only-secret-key-0123456789abcdefghij\n" + secrets)
    s.secrets.chmod(0o600)
    s.conf.write_text(standin_settings(s.name, app_dir=s.app, extra=f"  secrets_file: {s.secrets}\n{settings}"))
    s.publish = lambda message: standin_cmd("publish", s.app, "--name", s.name, "--message", message)
    s.publish(f"{source.name} v1")
    return s


def set_up_example_app(base: str, tmp: Path) -> Standin:
    """A fresh stand-in brought up by `fab setup` from the team's working copy: the first deploy as a user does it
    (no superuser: its password is the chain tests' business)."""
    s = with_example_app(make_standin(base, tmp), tmp, settings="  setup:\n    superuser: ''\n")
    s.tmp = tmp
    made = s.fab("setup", timeout=1800)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr
    return s


def deploy_example_app(base: str, tmp: Path, settings: str = "", secrets: str = "") -> Standin:
    """A fresh stand-in serving the example app over HTTPS, set up by `fab setup` with a made-up export stamped with
    the app's commit (so nothing is built). `settings` is YAML added under qms:, `secrets` lines added to its secrets
    file; `s.setup_output` is what setup printed."""
    s = with_example_app(make_standin(base, tmp), tmp, settings, secrets)
    if "superuser:" not in settings:   # no superuser: its password is the chain tests' business
        s.conf.write_text(more_settings(s.conf.read_text(), "  setup:\n    superuser: ''\n"))
    s.tmp = tmp
    stamp_export(s, "backend")
    # The guide's section 5: uv installed the usual way, into ~/.local/bin, which systemd's PATH does not have.
    s.ssh("python3 -m pip install -q --user --break-system-packages uv && test -x ~/.local/bin/uv")
    made = s.fab("setup", timeout=1800)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr
    s.setup_output = made.stdout
    return s


def stamp_export(s: Standin, marker: str, **kw) -> dict:
    """A made-up export of the app's HEAD commit in its frontend/out: a deploy ships it without building."""
    head = subprocess.run(["git", "-C", str(s.app), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    return make_export(s.app / "frontend" / "out", marker=marker, git_sha=head, **kw)


def get(standin: Standin, path: str) -> tuple[int, str]:
    """GET through nginx over HTTPS, as a browser of qms.test would (the stand-in's ACME root trusted)."""
    result = subprocess.run(["curl", "-s", "--noproxy", "*", "--cacert", str(standin.dir / "acme-root.pem"),
                             "--resolve", f"qms.test:443:{standin.address}", "-w", "\n%{http_code}",
                             f"https://qms.test{path}"], capture_output=True, text=True, timeout=30)
    body, _, code = result.stdout.rpartition("\n")
    return int(code or 0), body


def deploy_in_background(s: Standin, log: Path, *args: str) -> subprocess.Popen:
    """`fab deploy ARGS` started as a user starts it, its output going to `log` as it comes."""
    with open(log, "w") as out:
        return subprocess.Popen([project_exe("fab"), "-f", str(s.conf), "deploy", *args], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_for_output(process: subprocess.Popen, log: Path, text: str, timeout: float = 300) -> None:
    """Until `text` (such as `== deps`, the line a step starts with) is in the log of a running `process`."""
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.1)


def example_app_module(base: str, name: str, make=deploy_example_app):
    """A module's fixture `name`: one stand-in serving the example app (`make`: deploy_example_app, or
    set_up_example_app for a real build) shared by the module's tests, removed after the last."""
    @pytest.fixture(scope="module", name=name)
    def fixture(tmp_path_factory):
        s = make(base, tmp_path_factory.mktemp(base))
        yield s
        remove_standin(s)
    return fixture


def served(s: Standin) -> str:
    """The release `current` points at: its backend runs as qms-backend@<id>."""
    return s.ssh("basename $(readlink ~/QMS/current)").stdout.strip()

