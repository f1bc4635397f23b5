#!/usr/bin/env python3
"""Benchmark: the daily update of a one-line change, `fab deploy` against the guide's own manual sequence.
    sudo python3 bench/deploy.py [--rtt MS] [--keep]     (from the repo root; root boots the stand-ins)

It boots two fresh stand-ins, `benchdeploy` and `benchmanual`, and gives each the example app with `fab setup`
(plain HTTP: no certificate; not measured). `benchmanual` is then put in the guide's shape: a plain `frontend/out`
directory and the guide's unit (uvicorn binding port 8000 itself, bench/restart.py's `qms-plain`). The same
one-line change to the home page's title is committed in both working copies, and then, in the same run:
- `benchdeploy` gets `fab deploy --push`;
- `benchmanual` gets the guide's sequence: `npm run build`, `scp -r out/`, `chmod -R 755`, `git pull`, `uv sync`,
  `migrate`, `collectstatic`, `systemctl restart`, `systemctl reload nginx`, one ssh command each, as typed by hand.
For each it measures the wall time, the bytes this machine sent to the stand-in (its veth link's counter), the SSH
connections the stand-in accepted (sshd's journal), and the requests that failed during it: a client on the
stand-in itself asks nginx for `/` and `/api/version/` ten times a second each, from before the first command until
after the last. Every ssh connection goes through bench/delay_relay.py with --rtt (default 10 ms round trip, as to
a VPS; 0 for none). It prints the table, then powers both stand-ins off. It exits 0 whatever it measured.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))   # run as a script from anywhere: the repo's own modules are importable
sys.path.insert(0, str(REPO / "bench"))
from restart import PLAIN, PLAIN_UNIT   # noqa: E402
from tests.standin.app_changes import set_frontend_title   # noqa: E402
from tests.standin.harness import STATE, project_exe, standin_cmd, standin_settings   # noqa: E402

OURS, MANUAL = "benchdeploy", "benchmanual"
APP_ROOT = "/home/ubuntu/QMS"
API_URL = "https://qms.test/api"
RELAY = REPO / "bench" / "delay_relay.py"

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

    @property
    def state(self) -> Path:
        return STATE / self.name

    @property
    def app(self) -> Path:
        return self.work / self.name / "app"

    @property
    def ssh_config(self) -> Path:
        return self.work / self.name / "ssh_config"

    def ssh(self, command: str) -> str:
        return sh("ssh", "-F", self.state / "ssh_config", self.name, command).stdout

    def bytes_sent(self) -> int:
        index = json.loads((self.state / "info.json").read_text())["index"]
        return int(Path(f"/sys/class/net/qms{index}h/statistics/tx_bytes").read_text())

    def connections_since(self, since: float, until: float) -> int:
        log = self.ssh(f"sudo journalctl -q -o cat --since @{since:.0f} --until @{until + 1:.0f} _COMM=sshd")
        return sum("Accepted publickey" in line for line in log.splitlines())


def prepare(box: Box, rtt: float) -> Path:
    """A fresh stand-in with the example app set up; returns the settings file (no certificate: plain HTTP)."""
    standin_cmd("up", "--fresh", "--name", box.name)
    (box.work / box.name).mkdir(parents=True)
    shutil.copytree(REPO / "tests/example_app", box.app, ignore=shutil.ignore_patterns("node_modules", ".next", "out"))
    (box.app / "frontend" / "node_modules").symlink_to(REPO / "tests/example_app/frontend/node_modules")
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
    sh(project_exe("fab"), "-f", conf, "setup", cwd=REPO)
    print(f"bench: {box.name}: setup in {time.monotonic() - started:.1f} s", flush=True)
    return conf


def guide_shape(box: Box) -> None:
    """The server as the guide left it: a plain frontend/out directory, uvicorn binding its port itself."""
    box.ssh(f"cd {APP_ROOT}/frontend && real=$(readlink -f out) && rm out && cp -a \"$real\" out && "
            "sudo systemctl disable -q --now qms-backend.socket qms-backend.service")
    sh("ssh", "-F", box.state / "ssh_config", box.name,
       f"sudo tee /etc/systemd/system/{PLAIN}.service >/dev/null <<'EOF'\n{PLAIN_UNIT}EOF\n"
       f"sudo systemctl daemon-reload && sudo systemctl enable -q --now {PLAIN}")


def one_line_change(box: Box) -> None:
    set_frontend_title(box.app, "QMS, one line changed")
    sh("git", "-C", box.app, "-c", "user.name=bench", "-c", "user.email=bench@qms.test", "commit", "-q", "-am",
       "a one-line change")


def manual_sequence(box: Box) -> list[list]:
    """The guide's daily update, one command at a time (section 9 and the daily-update list)."""
    ssh = ["ssh", "-F", box.ssh_config, box.name]
    in_backend = f"cd {APP_ROOT}/backend && set -a && . ../.env && set +a && "
    return [
        ["npm", "run", "build"],
        # a str: pathlib would drop the trailing "/.", and scp would then copy out/ into out/out/
        ["scp", "-q", "-r", "-F", box.ssh_config, f"{box.app}/frontend/out/.", f"{box.name}:{APP_ROOT}/frontend/out/"],
        [*ssh, f"chmod -R 755 {APP_ROOT}/frontend/out"],
        [*ssh, f"cd {APP_ROOT} && git pull -q --ff-only origin main"],
        [*ssh, f"cd {APP_ROOT}/backend && /opt/uv/bin/uv sync -q"],
        [*ssh, in_backend + ".venv/bin/python manage.py migrate --noinput"],
        [*ssh, in_backend + ".venv/bin/python manage.py collectstatic --noinput"],
        [*ssh, f"sudo systemctl restart {PLAIN}"],
        [*ssh, "sudo systemctl reload nginx"],
    ]


@dataclass
class Figures:
    seconds: float
    sent: int
    connections: int
    load: dict


def measured(box: Box, commands: list[list], env: dict) -> Figures:
    load = subprocess.Popen(["ssh", "-F", box.state / "ssh_config", box.name, f"python3 -c {shlex.quote(LOAD)}"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    time.sleep(1.5)                        # the load runs before the first command...
    sent, since = box.bytes_sent(), time.time()
    started = time.monotonic()
    for command in commands:
        sh(*command, cwd=box.app / "frontend" if command[0] == "npm" else REPO, env=env)
    seconds = time.monotonic() - started
    sent, until = box.bytes_sent() - sent, time.time()
    time.sleep(2.0)                        # ...and after the last one
    out, _ = load.communicate("stop\n", timeout=60)
    return Figures(seconds, sent, box.connections_since(since, until), json.loads(out.strip().splitlines()[-1]))


def failed(load: dict) -> tuple[int, int]:
    total = sum(load.values())
    return total - sum(n for key, n in load.items() if key.endswith(" 200")), total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rtt", type=float, default=10.0, help="round trip added to every ssh connection, ms")
    parser.add_argument("--keep", action="store_true", help="leave the stand-ins running")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    ours, manual = Box(OURS, work), Box(MANUAL, work)
    try:
        conf = prepare(ours, args.rtt)
        prepare(manual, args.rtt)
        guide_shape(manual)
        for box in (ours, manual):
            one_line_change(box)
        build_env = {"NEXT_PUBLIC_API_URL": API_URL, "NEXT_TELEMETRY_DISABLED": "1"}
        # the manual way needs the commit on the remote too (the guide pushed from the PC before `git pull`)
        rows = {
            "qms-deploy `fab deploy --push`": measured(ours, [[project_exe("fab"), "-f", conf, "deploy", "--push"]], {}),
            "the guide's sequence (push, build, scp -r, 7 ssh commands)": measured(
                manual, [["git", "-C", manual.app, "push", "-q", "standin", "HEAD:main"], *manual_sequence(manual)],
                build_env),
        }
        titles = {box.name: box.ssh("curl -s -H 'Host: qms.test' http://127.0.0.1/ | grep -o '<title[^<]*'")
                  for box in (ours, manual)}
        print(f"\nbench: a one-line frontend change, ssh round trip {args.rtt:g} ms (bench/delay_relay.py)\n")
        print("| way | wall time | bytes sent | ssh connections | failed requests during it |")
        print("|---|---:|---:|---:|---:|")
        for name, f in rows.items():
            bad, total = failed(f.load)
            print(f"| {name} | {f.seconds:.1f} s | {f.sent:,} | {f.connections} | {bad} of {total} |")
        for name, f in rows.items():
            print(f"bench: {name}: {f.load}")
        print(f"bench: served titles afterwards: {titles}")
    finally:
        if not args.keep:
            for box in (ours, manual):
                standin_cmd("down", "--name", box.name, check=False)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
