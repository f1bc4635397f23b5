#!/usr/bin/env python3
"""Benchmark: the daily update of a one-line change, `fab deploy` against the guide's own manual sequence; then a
one-line backend change, `fab rollback`, a backup, and the memory and disk the releases take.
    sudo python3 bench/deploy.py [--rtt MS] [--keep]     (from the repo root; root boots the stand-ins)

It boots two fresh stand-ins, `benchdeploy` and `benchmanual`, and gives each the example app with `fab setup`
(a real build; plain HTTP: no certificate; not measured). `benchmanual` is then put in the guide's shape (the
served release copied out of the release layout): a plain `frontend/out` directory copied from the served release,
our template instances `qms-backend@<id>` disabled and stopped, a venv in the clone's backend by uv sync, the
guide's `QMS/.env` (shared/.env plus DATABASE_PATH and STATIC_ROOT in the clone), a copy of the database,
collectstatic, the nginx site pointed at the clone (root/alias) and at 127.0.0.1:8000, and the guide's unit
(uvicorn binding port 8000 itself, bench/restart.py's `qms-plain`). Then, in the same run:
1. the same one-line change to the home page's title, committed in both working copies: `benchdeploy` gets
   `fab deploy --push`, `benchmanual` the guide's sequence: `git push`, `npm run build`, `scp -r out/`,
   `chmod -R 755`, `git pull`, `uv sync`, `migrate`, `collectstatic`, `systemctl restart`, `systemctl reload
   nginx`, one ssh command each, as typed by hand;
2. the same one-line backend change (the version /api/version/ answers): `fab deploy --push` against the guide's
   sequence without its three frontend commands;
3. back to the version before: `fab rollback` against the guide's way back (it has no rollback: `git checkout
   HEAD~1` in the clone, then the same backend commands); the aim (issue #14) is under 3 s from the command's start
   until /api/version/ through nginx answers the previous version;
4. a backup: `fab backup` against the guide's `sqlite3 .backup` and gzip (without its S3 upload);
5. the memory high-water mark of each stand-in during its `fab setup`;
6. the backends that run after the backend change: the served one and the standby (the release a plain rollback returns
   to, kept running by `qms.backend.standby`), each one's summed PSS;
7. the disk a release takes (the release agent's `list`: each release's bytes not shared with a newer one)
   against the guide's single copy, and the seconds of the deploys' deps step against the guide's `uv sync`.
For each command it measures the wall time, the bytes this machine sent to the stand-in (its veth link's counter),
the SSH connections the stand-in accepted (sshd's journal), the stand-in's memory high-water mark (its cgroup's
memory.max_usage_in_bytes, reset before, against its limit of 1 GB), and the requests that failed during it: a
client on the stand-in itself asks nginx for `/` and `/api/version/` ten times a second each, from before the
first command until after the last. For the backend change and the way back, this machine also asks
/api/version/ through nginx every 0.1 s and notes when the expected version first answers. Every ssh connection
of the measured commands goes through bench/delay_relay.py with --rtt (default 10 ms round trip, as to a VPS; 0
for none). It prints the tables, then powers both stand-ins off. It exits 0 whatever it measured.
"""
from __future__ import annotations

import argparse
import http.client
import json
import re
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))   # run as a script from anywhere: the repo's own modules are importable
sys.path.insert(0, str(REPO / "bench"))
from restart import (GUIDE_BACKEND, PLAIN, PORT_UPSTREAM, SITE, SOCKET_UPSTREAM,   # noqa: E402
                     install_plain_unit)
from tasks.remote import command as agent_command, parse_answer   # noqa: E402
from tests.standin.app_changes import set_backend_version, set_frontend_title   # noqa: E402
from tests.standin.harness import STATE, project_exe, standin_cmd, standin_settings   # noqa: E402

OURS, MANUAL = "benchdeploy", "benchmanual"
APP_ROOT = "/home/ubuntu/QMS"
API_URL = "https://qms.test/api"
RELAY = REPO / "bench" / "delay_relay.py"
ROLLBACK_AIM = 3.0   # s from `fab rollback`'s start until the previous version answers (issue #14)

# Run on the stand-in by its own python3: GET / and /api/version/ through nginx every 0.1 s until stdin closes,
# then print how each request ended.
LOAD = r"""
import http.client, json, select, sys, time
counts = {}
while not select.select([sys.stdin], [], [], 0)[0]:
    started = time.monotonic()
    for path in ("/", "/api/version/"):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", 80, timeout=10)
            conn.request("GET", path, headers={"Host": "qms.test", "Connection": "close"})
            answer = conn.getresponse()
            answer.read()
            outcome = str(answer.status)
        except OSError as e:
            outcome = type(e).__name__
        counts[path + " " + outcome] = counts.get(path + " " + outcome, 0) + 1
    time.sleep(max(0.0, 0.1 - (time.monotonic() - started)))
print(json.dumps(counts))
"""


def sh(*args, cwd=None, env=None, quiet=True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=quiet, text=True,
                            env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise SystemExit(f"bench: {' '.join(map(str, args))[:200]} failed ({result.returncode}):\n"
                         f"{(result.stdout or '')[-2000:]}{(result.stderr or '')[-2000:]}")
    return result


@dataclass
class Box:
    name: str
    work: Path
    setup_peak: tuple = (None, None)   # memory_peak() during its setup

    @property
    def state(self) -> Path:
        return STATE / self.name

    @property
    def app(self) -> Path:
        return self.work / self.name / "app"

    @property
    def ssh_config(self) -> Path:
        return self.work / self.name / "ssh_config"

    @property
    def address(self) -> str:
        return next(line.split()[1] for line in (self.state / "ssh_config").read_text().splitlines()
                    if line.strip().startswith("HostName"))

    @property
    def cgroup(self) -> Path:
        """The stand-in's memory cgroup on this (cgroup v1) machine, as scripts/standin's memory_cgroup names it."""
        return Path(f"/sys/fs/cgroup/memory/qms-standin-{self.name}")

    def ssh(self, command: str, input: Optional[str] = None) -> str:
        result = subprocess.run(["ssh", "-F", str(self.state / "ssh_config"), self.name, command],
                                capture_output=True, text=True, input=input,
                                stdin=None if input is not None else subprocess.DEVNULL, timeout=600)
        if result.returncode != 0:
            raise SystemExit(f"bench: {command[:200]!r} failed on {self.name} ({result.returncode}):\n"
                             f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
        return result.stdout

    def bytes_sent(self) -> int:
        index = json.loads((self.state / "info.json").read_text())["index"]
        return int(Path(f"/sys/class/net/qms{index}h/statistics/tx_bytes").read_text())

    def connections_since(self, since: float, until: float) -> int:
        log = self.ssh(f"sudo journalctl -q -o cat --since @{since:.0f} --until @{until + 1:.0f} _COMM=sshd")
        return sum("Accepted publickey" in line for line in log.splitlines())

    def reset_memory_peak(self) -> None:
        if (self.cgroup / "memory.max_usage_in_bytes").exists():
            (self.cgroup / "memory.max_usage_in_bytes").write_text("0")

    def memory_peak(self) -> tuple[Optional[int], Optional[int]]:
        """The high-water mark since the reset and the limit, in bytes (None: no such cgroup here)."""
        try:
            return (int((self.cgroup / "memory.max_usage_in_bytes").read_text()),
                    int((self.cgroup / "memory.limit_in_bytes").read_text()))
        except OSError:
            return None, None


def node_modules(work: Path) -> Path:
    """The example frontend's node_modules: the repo's copy when it has one, else `npm ci` once (from npm's cache
    when it holds the locked versions) in the work directory; both working copies link to it."""
    ours = REPO / "tests/example_app/frontend/node_modules"
    if ours.is_dir():
        return ours
    target = work / "npm"
    target.mkdir()
    for name in ("package.json", "package-lock.json"):
        shutil.copy(REPO / "tests/example_app/frontend" / name, target / name)
    started = time.monotonic()
    sh("npm", "ci", "--prefer-offline", "--no-audit", "--no-fund", cwd=target)
    print(f"bench: npm ci for the example frontend in {time.monotonic() - started:.1f} s", flush=True)
    return target / "node_modules"


def prepare(box: Box, rtt: float, modules: Path) -> Path:
    """A fresh stand-in with the example app set up (a real build, so that the export on the server is the one a
    deploy compares against); returns the settings file (no TLS email: plain HTTP, no certificate)."""
    standin_cmd("up", "--fresh", "--name", box.name)
    (box.work / box.name).mkdir(parents=True)
    shutil.copytree(REPO / "tests/example_app", box.app, ignore=shutil.ignore_patterns("node_modules", ".next", "out"))
    (box.app / "frontend" / "node_modules").symlink_to(modules)
    standin_cmd("publish", box.app, "--name", box.name, "--message", "example app")
    relay = f"\n  ProxyCommand {sys.executable} {RELAY} %h %p {rtt / 2}\n" if rtt else "\n"
    box.ssh_config.write_text((box.state / "ssh_config").read_text().rstrip("\n") + relay)
    secrets_file = box.work / box.name / "standin.env"
    secrets_file.write_text(f"SECRET_KEY=bench-only-{secrets.token_urlsafe(40)}\n")
    secrets_file.chmod(0o600)
    conf = box.work / box.name / "bench.yaml"
    conf.write_text(standin_settings(box.name, ssh_config=box.ssh_config, app_dir=box.app,
                                     extra=f"  secrets_file: {secrets_file}\n  setup:\n    superuser: ''\n")
                    .replace("    email: admin@qms.test\n", ""))
    started = time.monotonic()
    box.reset_memory_peak()
    sh(project_exe("fab"), "-f", conf, "setup", cwd=REPO)
    box.setup_peak = box.memory_peak()
    print(f"bench: {box.name}: setup in {time.monotonic() - started:.1f} s", flush=True)
    return conf


def guide_shape(box: Box) -> None:
    """The server as the guide left it, made from the release layout `fab setup` left: a plain frontend/out
    directory (a copy of the served release's), our instances stopped, the guide's backend in the clone
    (bench/restart.py's GUIDE_BACKEND), nginx serving the clone and proxying to port 8000, the guide's unit."""
    box.ssh(f"""set -e
cd {APP_ROOT}/frontend && real=$(readlink -f out) && rm out && cp -a "$real" out
units=$(systemctl list-units --all --plain --no-legend 'qms-backend@*' | awk '{{print $1}}')
if [ -n "$units" ]; then sudo systemctl disable -q --now $units; fi
{GUIDE_BACKEND}
sudo sed -i -e 's#{SOCKET_UPSTREAM}#{PORT_UPSTREAM}#' -e 's#{APP_ROOT}/current/#{APP_ROOT}/#g' {SITE}
sudo nginx -t -q && sudo systemctl reload nginx
""")
    install_plain_unit(box.ssh)
    box.ssh(f"sudo systemctl enable -q --now {PLAIN}")
    deadline = time.monotonic() + 60
    while api_version(box) is None:
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: {box.name}: /api/version/ does not answer in the guide's shape")
        time.sleep(0.5)
    units = box.ssh("systemctl list-units --plain --no-legend 'qms-backend@*' | awk '{print $1}'").split()
    current = box.ssh(f"grep -c '/current/' {SITE} || true").strip()
    print(f"bench: {box.name}: in the guide's shape (our instances running: {' '.join(units) or 'none'}; lines of "
          f"the site still on current/: {current})", flush=True)


def api_version(box: Box) -> Optional[str]:
    """GET /api/version/ through nginx from this machine, as qms.test over plain HTTP: the version, or None."""
    conn = http.client.HTTPConnection(box.address, 80, timeout=5)
    try:
        conn.request("GET", "/api/version/", headers={"Host": "qms.test", "Connection": "close"})
        answer = conn.getresponse()
        body = answer.read()
        return json.loads(body).get("version") if answer.status == 200 else None
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def commit(box: Box, change, message: str) -> None:
    change(box.app)
    sh("git", "-C", box.app, "-c", "user.name=bench", "-c", "user.email=bench@qms.test", "commit", "-q", "-am",
       message)


def push(box: Box) -> list:
    """The manual way needs the commit on the remote too (the guide pushed from the PC before `git pull`)."""
    return ["git", "-C", box.app, "push", "-q", "standin", "HEAD:main"]


def manual_sequence(box: Box, frontend: bool = True, back: bool = False) -> list[list]:
    """The guide's daily update, one command at a time (section 9 and the daily-update list); without its frontend
    commands for a backend change; `back`: its way back, the previous commit checked out instead of pulled."""
    ssh = ["ssh", "-F", box.ssh_config, box.name]
    in_backend = f"cd {APP_ROOT}/backend && set -a && . ../.env && set +a && "
    return [
        *([["npm", "run", "build"],
           # a str: pathlib would drop the trailing "/.", and scp would then copy out/ into out/out/
           ["scp", "-q", "-r", "-F", box.ssh_config, f"{box.app}/frontend/out/.",
            f"{box.name}:{APP_ROOT}/frontend/out/"],
           [*ssh, f"chmod -R 755 {APP_ROOT}/frontend/out"]] if frontend else []),
        [*ssh, f"cd {APP_ROOT} && git checkout -q HEAD~1" if back else
         f"cd {APP_ROOT} && git pull -q --ff-only origin main"],
        [*ssh, f"cd {APP_ROOT}/backend && /opt/uv/bin/uv sync -q"],
        [*ssh, in_backend + ".venv/bin/python manage.py migrate --noinput"],
        [*ssh, in_backend + ".venv/bin/python manage.py collectstatic --noinput"],
        [*ssh, f"sudo systemctl restart {PLAIN}"],
        [*ssh, "sudo systemctl reload nginx"],
    ]


def label(command: list) -> str:
    """A command as the tables name it: `git push`, `npm run build`, `scp -r`, `uv sync`, `fab deploy`..."""
    words = [str(word) for word in command]
    if words[0] == "git":
        return "git push"
    if words[0] == "npm":
        return "npm run build"
    if words[0] == "scp":
        return "scp -r"
    if words[0].endswith("fab"):
        return "fab " + words[3]
    remote = words[-1]   # an ssh command: named by what it runs
    for name in ("uv sync", "git pull", "git checkout", "chmod", "migrate", "collectstatic", "systemctl restart",
                 "reload nginx"):
        if name in remote:
            return name
    return remote[:40]


@dataclass
class Figures:
    seconds: float
    sent: int
    connections: int
    load: dict
    steps: list            # (label, seconds) of each command
    output: str            # what the commands printed
    memory_peak: Optional[int]
    memory_limit: Optional[int]
    answered: Optional[float] = None   # s from the start until /api/version/ answered the expected version


class VersionWatch:
    """Asks /api/version/ through nginx from this machine every 0.1 s and notes when `expected` first answers."""

    def __init__(self, box: Box, expected: str):
        self.box, self.expected, self.seen_at = box, expected, None
        self.stop = threading.Event()

    def start(self, started: float) -> None:
        self.started = started
        self.thread = threading.Thread(target=self.watch, daemon=True)
        self.thread.start()

    def watch(self) -> None:
        while not self.stop.is_set():
            asked = time.monotonic()
            if api_version(self.box) == self.expected:
                self.seen_at = time.monotonic() - self.started
                return
            self.stop.wait(max(0.0, 0.1 - (time.monotonic() - asked)))

    def result(self, wait: float = 30.0) -> Optional[float]:
        self.thread.join(timeout=wait)
        self.stop.set()
        return self.seen_at


def measured(box: Box, commands: list[list], env: dict, expect: Optional[str] = None) -> Figures:
    load = subprocess.Popen(["ssh", "-F", box.state / "ssh_config", box.name, f"python3 -c {shlex.quote(LOAD)}"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    time.sleep(1.5)                        # the load runs before the first command...
    box.reset_memory_peak()
    sent, since = box.bytes_sent(), time.time()
    watch = VersionWatch(box, expect) if expect else None
    started = time.monotonic()
    if watch:
        watch.start(started)
    steps, output = [], []
    for command in commands:
        began = time.monotonic()
        result = sh(*command, cwd=box.app / "frontend" if command[0] == "npm" else REPO, env=env)
        steps.append((label(command), time.monotonic() - began))
        output.append(result.stdout)
    seconds = time.monotonic() - started
    sent, until = box.bytes_sent() - sent, time.time()
    answered = watch.result() if watch else None
    peak, limit = box.memory_peak()
    time.sleep(2.0)                        # ...and after the last one
    out, _ = load.communicate("stop\n", timeout=60)
    return Figures(seconds, sent, box.connections_since(since, until), json.loads(out.strip().splitlines()[-1]),
                   steps, "".join(output), peak, limit, answered)


def failed(load: dict) -> tuple[int, int]:
    total = sum(load.values())
    return total - sum(n for key, n in load.items() if key.endswith(" 200")), total


def failed_cell(load: dict) -> str:
    bad, total = failed(load)
    kinds = ", ".join(f"{n}x {key}" for key, n in sorted(load.items()) if not key.endswith(" 200"))
    return f"{bad} of {total}" + (f" ({kinds})" if kinds else "")


def memory_cell(f: Figures) -> str:
    if f.memory_peak is None:
        return "n/a"
    return f"{f.memory_peak / 2**20:.0f} MB of {f.memory_limit / 2**20:.0f} MB"


def step_seconds(output: str, step: str) -> Optional[float]:
    """A step's time from the summary table a deploy prints (rich's box characters, or plain pipes)."""
    found = re.findall(rf"^\s*[│|┃]\s*{re.escape(step)}\s*[│|┃]\s*([\d.]+) s\b", output, re.M)
    return float(found[-1]) if found else None


def releases(box: Box) -> dict:
    """The release agent's `list` on the server, as `fab releases` runs it."""
    return parse_answer(box.ssh(agent_command("release_agent", "list", APP_ROOT, "frontend/out", "sizes")))


def instance_pss(box: Box, release: str) -> int:
    """The summed PSS (bytes) of a release's backend instance: its main process and every child."""
    out = box.ssh(f"""main=$(systemctl show -p MainPID --value 'qms-backend@{release}.service')
for pid in $main $(pgrep -P "$main"); do sudo awk '/^Pss:/ {{s += $2}} END {{print s}}' /proc/$pid/smaps_rollup; done""")
    return sum(int(n) for n in out.split() if n.isdigit()) * 1024


def guide_copy_bytes(box: Box) -> int:
    """The guide's one copy of the app, counted as the release agent counts (blocks, hard links once): the clone's
    backend (code, venv, static files; not the database) and frontend/out."""
    out = box.ssh(f"cd {APP_ROOT} && du -sc -B1 --exclude=db.sqlite3 --exclude=.git backend frontend/out | tail -1")
    return int(out.split()[0])


def table(header: tuple, rows: list[tuple]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|---|" + "---:|" * (len(header) - 1))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def row(name: str, f: Figures, *more: str) -> tuple:
    return (name, f"{f.seconds:.1f} s", f"{f.sent:,}", f"{f.connections}", failed_cell(f.load), memory_cell(f), *more)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rtt", type=float, default=10.0, help="round trip added to every ssh connection, ms")
    parser.add_argument("--keep", action="store_true", help="leave the stand-ins running")
    args = parser.parse_args()
    begun = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    ours, manual = Box(OURS, work), Box(MANUAL, work)
    try:
        modules = node_modules(work)
        conf = prepare(ours, args.rtt, modules)
        prepare(manual, args.rtt, modules)
        guide_shape(manual)
        build_env = {"NEXT_PUBLIC_API_URL": API_URL, "NEXT_TELEMETRY_DISABLED": "1"}
        deploy = [project_exe("fab"), "-f", conf, "deploy", "--push"]
        before = api_version(ours)

        # 1. a one-line frontend change
        for box in (ours, manual):
            commit(box, lambda app: set_frontend_title(app, "QMS, one line changed"), "a one-line frontend change")
        front = {
            "qms-deploy `fab deploy --push`": measured(ours, [deploy], {}),
            "the guide's sequence (push, build, scp -r, 7 ssh commands)": measured(
                manual, [push(manual), *manual_sequence(manual)], build_env),
        }
        titles = {box.name: box.ssh("curl -s -H 'Host: qms.test' http://127.0.0.1/ | grep -o '<title[^<]*'").strip()
                  for box in (ours, manual)}

        # 2. a one-line backend change
        for box in (ours, manual):
            commit(box, lambda app: set_backend_version(app, "2"), "a one-line backend change")
        back = {
            "qms-deploy `fab deploy --push`": measured(ours, [deploy], {}, expect="2"),
            "the guide's sequence without its frontend (push, 6 ssh commands)": measured(
                manual, [push(manual), *manual_sequence(manual, frontend=False)], {}, expect="2"),
        }

        # the backends running now: the served release's and the standby's
        served = releases(ours).get("current")
        running = ours.ssh("systemctl list-units --plain --no-legend --state=active 'qms-backend@*.service' "
                           "| cut -d' ' -f1 | sed 's/^qms-backend@//; s/.service$//'").split()
        pss = {rid: instance_pss(ours, rid) for rid in running}

        # 3. back to the version before
        way_back = {
            "qms-deploy `fab rollback`": measured(ours, [[project_exe("fab"), "-f", conf, "rollback"]], {},
                                                  expect=before),
            "the guide's way back (git checkout HEAD~1, 5 more ssh commands)": measured(
                manual, manual_sequence(manual, frontend=False, back=True), {}, expect=before),
        }

        # 4. a backup: ours against the guide's (sqlite3 .backup, gzip, aws s3 cp: here without the upload)
        backup = {
            "qms-deploy `fab backup`": measured(ours, [[project_exe("fab"), "-f", conf, "backup"]], {}),
            "the guide's (sqlite3 .backup + gzip, one ssh command)": measured(manual, [[
                "ssh", "-F", manual.ssh_config, manual.name,
                f"cd {APP_ROOT} && sqlite3 backend/db.sqlite3 '.backup /tmp/guide.sqlite3' "
                "&& gzip -f /tmp/guide.sqlite3"]], {}),
        }

        # 5. disk and deps, and the standby's memory (the release before the served one keeps its backend running)
        listing = releases(ours)

        guide_bytes = guide_copy_bytes(manual)

        print(f"\nbench: stand-ins `{OURS}` (qms-deploy) and `{MANUAL}` (the guide's shape), ssh round trip "
              f"{args.rtt:g} ms (bench/delay_relay.py); failed requests: of `/` and `/api/version/` asked 10 times a "
              "second each on the stand-in; memory: the stand-in's cgroup high-water mark during it, of its limit\n")
        header = ("way", "wall time", "bytes sent", "ssh connections", "failed requests during it",
                  "memory high-water")
        print("1. a one-line frontend change (the home page's title)\n")
        table(header, [row(name, f) for name, f in front.items()])
        print(f"\nserved titles afterwards: {titles}\n")
        print("2. a one-line backend change (the version /api/version/ answers, 1 -> 2)\n")
        table(header + ("new version answers after",),
              [row(name, f, "never" if f.answered is None else f"{f.answered:.1f} s") for name, f in back.items()])
        print(f"\n3. back to the version before ({before}); aim: the previous version answers through nginx under "
              f"{ROLLBACK_AIM:g} s after the command starts\n")
        table(header + ("previous version answers after", "aim"),
              [row(name, f, "never" if f.answered is None else f"{f.answered:.1f} s",
                   ("met" if f.answered is not None and f.answered < ROLLBACK_AIM else "missed")
                   if "rollback" in name else "-") for name, f in way_back.items()])
        print("\n4. a backup of the database\n")
        table(header, [row(name, f) for name, f in backup.items()])
        print("\n5. setup (first deploy: packages, venv, build upload, certificate-less nginx): the stand-in's "
              "memory high-water mark\n")
        table(("stand-in", "memory high-water"),
              [(box.name, memory_cell(Figures(0, 0, 0, {}, [], "", *box.setup_peak))) for box in (ours, manual)])
        print("\n6. the backends running after the backend change: the served release's and the standby's (the "
              "release a plain rollback returns to), summed PSS\n")
        table(("release", "role", "PSS"), [(rid, "served" if rid == served else "standby", f"{n / 2**20:.0f} MB")
                                           for rid, n in pss.items()])
        print("\n7. the deps step (the release's own venv) against the guide's `uv sync` (in its one venv)\n")
        manual_uv = lambda f: next((s for name, s in f.steps if name == "uv sync"), None)   # noqa: E731
        table(("change", "qms-deploy: deploy's deps step", "the guide: `uv sync`"), [
            ("frontend", f"{step_seconds(front['qms-deploy `fab deploy --push`'].output, 'deps') or 0:.1f} s",
             f"{manual_uv(list(front.values())[1]):.1f} s"),
            ("backend", f"{step_seconds(back['qms-deploy `fab deploy --push`'].output, 'deps') or 0:.1f} s",
             f"{manual_uv(list(back.values())[1]):.1f} s")])
        print("\n8. disk: each release's bytes not shared with a newer one (the release agent's `list`; the newest "
              "counts whole), against the guide's one copy (clone's backend with venv and static files, "
              "frontend/out; no database)\n")
        rows = [(r["id"] + (" (served)" if r["current"] else ""), (r.get("commit") or "?")[:7],
                 f"{r['bytes']:,}") for r in listing.get("releases", [])]
        total = sum(r["bytes"] for r in listing.get("releases", []))
        table(("release", "backend commit", "bytes"), rows + [("all releases", "", f"{total:,}"),
                                                             ("the guide's one copy", "", f"{guide_bytes:,}")])
        print("\nper command (s):")
        for group in (front, back, way_back, backup):
            for name, f in group.items():
                print(f"  {name}: " + ", ".join(f"{step} {s:.1f}" for step, s in f.steps))
        for name, f in front.items():
            print(f"load, frontend change, {name}: {f.load}")
        print(f"\ntotal run time {time.monotonic() - begun:.0f} s")
    finally:
        if not args.keep:
            for box in (ours, manual):
                standin_cmd("down", "--name", box.name, check=False)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
