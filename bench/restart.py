#!/usr/bin/env python3
"""Benchmark: requests sent and failed while the backend restarts under steady load: qms-deploy's `restart`
(socket activation; --mode restart and --mode reload) against the guide's plain unit and `systemctl restart`.

    sudo python3 bench/restart.py            (from the repo root; root is needed to boot the stand-in)

It boots a fresh stand-in named `benchrestart` and brings the example app up with `fab setup` (a made-up export
stamped with the app's commit, so nothing is built; plain HTTP through nginx: no TLS). The served release runs as
our template unit's instance `qms-backend@<release id>` on its own unix socket (socket activation). Beside it the
guide's shape is made from the server's git clone (GUIDE §5: a venv in /home/ubuntu/QMS/backend by uv sync, a
/home/ubuntu/QMS/.env from shared/.env, a copy of the database) and a second unit, `qms-plain.service`: the guide's
way, uvicorn binding 127.0.0.1:8000 itself, no socket activation. Only one of the two serves at a time: for the
plain variant our instance is stopped and nginx's site is edited to proxy to 127.0.0.1:8000 (and reloaded); for
ours, the other way round. Then, for each variant, 3 runs interleaved in rotated order, it sends a steady stream
of GET /api/health/ through nginx on the stand-in's address (8 a second, a new connection each, under the site's
limit of 10 r/s, burst 20), runs the restart about 1 s into the stream, and keeps the stream going until the
service has answered again (at least 6 s in all, never more than 30 s). Every outcome is counted: 200, another
status (502/503/504/429), no answer (refused, reset, timeout). It samples the service's memory during each run
(the peak) and reads it after (PSS and RSS of its processes, systemd's MemoryCurrent/MemoryMax, the whole box's
cgroup). It prints the table, then powers the stand-in off. A benchmark reports: it exits 0 whatever it measured.
"""
from __future__ import annotations

import argparse
import http.client
import json
import secrets
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))   # run as a script from anywhere: the repo's own modules are importable

from tests.export_fixture import make_export   # noqa: E402
from tests.standin.harness import STATE as STATES, project_exe, standin_cmd, standin_settings   # noqa: E402

NAME = "benchrestart"                     # the only stand-in this benchmark touches
STATE = STATES / NAME
HOME = "/home/ubuntu"
APP_ROOT = f"{HOME}/QMS"                  # the default settings' app_root (the server's git clone)
BACKEND = f"{APP_ROOT}/backend"           # the clone's backend: where the guide runs it
UNIT = ["qms-backend@"]                   # our served instance, qms-backend@<release id> (set after setup)
PLAIN = "qms-plain"
SITE = "/etc/nginx/sites-available/qms"   # the default settings' nginx.site
SOCKET_UPSTREAM = f"http://unix:{APP_ROOT}/current/backend.sock:"   # what our site proxies the API to
PORT_UPSTREAM = "http://127.0.0.1:8000"                               # what the guide's site proxies it to
DOMAIN = "qms.test"
HEALTH = "/api/health/"
RUNS = 3

# The load: open loop, a request every 1/RATE s whatever happened to the ones before (a slow answer does not
# delay the next one, as with real visitors), each on a new connection, from one client address: under nginx's
# limit_req of 10 r/s (burst 20), so a 429 would mean requests piled up, not that we sent too many.
RATE = 8.0                 # requests per second
LEAD = 1.0                 # s of load before the restart command starts
MIN_WINDOW = 6.0           # s: the load lasts at least this long...
TAIL = 2.0                 # ...and at least this long after the command returned, and until a 200 came back
MAX_WINDOW = 30.0          # s: never longer (at most RATE * MAX_WINDOW requests per run)
REQUEST_TIMEOUT = 15.0     # s per request (nginx itself gives up on the backend after 60 s)

# The guide's unit (section 5, with its fix applied: absolute path) in the guide's layout: the clone's backend (the
# served commit), its own venv made by the same uv from the same uv.lock, the app's settings from the same
# shared/.env, 2 workers as ours; as ubuntu (the guide's user) where ours runs as the app's user. So the only
# difference that matters to a restart is who holds the port.
PLAIN_UNIT = f"""# {PLAIN}.service, installed by bench/restart.py: the guide's way, uvicorn binds the port itself.
[Unit]
Description=QMS backend, the guide's way (no socket activation)
After=network.target

[Service]
User=ubuntu
Group=ubuntu
WorkingDirectory={BACKEND}
EnvironmentFile={APP_ROOT}/.env
ExecStart={BACKEND}/.venv/bin/uvicorn backend.asgi:application --host 127.0.0.1 --port 8000 --workers 2
Restart=always

[Install]
WantedBy=multi-user.target
"""

# The guide's backend in the server's clone, made from what `fab setup` left (as ubuntu, by the stand-in's shell):
# a venv by uv sync (the uv setup installed), the guide's .env (the app's secrets from shared/.env, plus where the
# database and static files are in the guide's layout), a copy of the database owned by ubuntu (ours belongs to
# the app's user alone), and collectstatic. Shared by bench/deploy.py.
GUIDE_BACKEND = f"""set -e
cd {BACKEND}
/opt/uv/bin/uv sync -q
{{ cat {APP_ROOT}/shared/.env; echo DATABASE_PATH={BACKEND}/db.sqlite3; echo STATIC_ROOT={BACKEND}/staticfiles; }} \\
    > {APP_ROOT}/.env
chmod 600 {APP_ROOT}/.env
sudo cp {APP_ROOT}/shared/db/db.sqlite3 {BACKEND}/db.sqlite3
sudo chown ubuntu:ubuntu {BACKEND}/db.sqlite3
set -a && . {APP_ROOT}/.env && set +a && .venv/bin/python manage.py collectstatic --noinput -v0
"""


def install_plain_unit(run) -> None:
    """The guide's unit, installed (not started); `run(command, input=None)` runs a command on the stand-in."""
    run(f"sudo tee /etc/systemd/system/{PLAIN}.service >/dev/null && sudo systemctl daemon-reload", input=PLAIN_UNIT)


def nginx_upstream(to_port: bool) -> str:
    """The shell command that points the site's API at the guide's port (or back at our socket) and reloads nginx."""
    old, new = (SOCKET_UPSTREAM, PORT_UPSTREAM) if to_port else (PORT_UPSTREAM, SOCKET_UPSTREAM)
    return f"sudo sed -i 's#{old}#{new}#' {SITE} && sudo nginx -t -q && sudo systemctl reload nginx"


# Run by the stand-in's python3 as root (our instance's processes belong to the app's user `qms`, the plain unit's
# to ubuntu): the memory of every process in the unit's cgroup (uvicorn's supervisor, its workers,
# multiprocessing's resource tracker), what systemd says of the unit's cgroup, and the whole box's cgroup (the
# stand-in's 1 GB), cgroup v2 or v1, whichever is there.
# `MEMORY unit once` prints one reading; `MEMORY unit peak` samples every 0.1 s until its stdin closes (at most
# 120 s) and prints the reading with the highest PSS.
MEMORY = r"""
import json, select, subprocess, sys, time
unit, mode = sys.argv[1:3]
show = dict(l.split("=", 1) for l in subprocess.run(
    ["systemctl", "show", "-p", "ControlGroup", "-p", "MemoryCurrent", "-p", "MemoryMax", unit],
    capture_output=True, text=True).stdout.splitlines() if "=" in l)

def read(path):
    try:
        return open(path).read()
    except OSError:
        return None

number = lambda v: int(v) if v and v.strip().isdigit() else None

def reading():
    # pid 0: a process of another pid namespace (another stand-in's, when the host shares a hierarchy): not ours
    pids = next(([p for p in t.split() if p != "0"] for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/systemd",
                 "/sys/fs/cgroup/unified") if (t := read(root + show.get("ControlGroup", "/none") + "/cgroup.procs"))
                 is not None), [])
    rss = pss = 0
    for pid in pids:
        for line in (read(f"/proc/{pid}/smaps_rollup") or "").splitlines():
            if line.startswith("Rss:"):
                rss += int(line.split()[1])
            elif line.startswith("Pss:"):
                pss += int(line.split()[1])
    v2, v1 = read("/sys/fs/cgroup/memory.stat"), read("/sys/fs/cgroup/memory/memory.stat")
    stat = dict(l.split() for l in (v2 or v1 or "").splitlines() if len(l.split()) == 2)
    return {
        "processes": len(pids), "rss_kb": rss, "pss_kb": pss,
        "unit_current": number(show.get("MemoryCurrent")), "unit_max": show.get("MemoryMax"),
        "box_used": number(read("/sys/fs/cgroup/memory.current")
                           or read("/sys/fs/cgroup/memory/memory.usage_in_bytes")),
        "box_anon": number(stat.get("anon") if v2 else stat.get("total_rss")),
        "box_limit": number(read("/sys/fs/cgroup/memory.max") or read("/sys/fs/cgroup/memory/memory.limit_in_bytes")),
    }

peak = reading()
if mode == "peak":
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not select.select([sys.stdin], [], [], 0.1)[0]:
        now = reading()
        if now["pss_kb"] > peak["pss_kb"]:
            peak = now
print(json.dumps(peak))
"""


# -- the stand-in --------------------------------------------------------------------------------------------
def ssh_config() -> Path:
    return STATE / "ssh_config"


def address() -> str:
    return next(line.split()[1] for line in ssh_config().read_text().splitlines()
                if line.strip().startswith("HostName"))


def on_standin(command: str, input: Optional[str] = None) -> str:
    """Set-up, switching units and reading memory: never inside a measurement (the plain restart aside)."""
    result = subprocess.run(["ssh", "-F", str(ssh_config()), NAME, command], capture_output=True, text=True,
                            input=input, stdin=None if input is not None else subprocess.DEVNULL, timeout=120)
    if result.returncode != 0:
        raise SystemExit(f"bench: {command!r} failed on the stand-in ({result.returncode}): {result.stderr[-1500:]}")
    return result.stdout


def fab(conf: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([project_exe("fab"), "-f", str(conf), *args], cwd=REPO, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def deploy(work: Path) -> Path:
    """The example app on the stand-in by `fab setup` with a made-up export stamped with its commit (nothing is
    built), minus TLS; then the guide's backend and unit beside ours. Returns the settings file."""
    app = work / "app"
    shutil.copytree(REPO / "tests/example_app", app, ignore=shutil.ignore_patterns("node_modules", ".next", "out"))
    secrets_file = work / "standin.env"
    secrets_file.write_text(f"SECRET_KEY=bench-only-{secrets.token_urlsafe(40)}\n")
    secrets_file.chmod(0o600)
    conf = work / f"{NAME}.yaml"
    conf.write_text(standin_settings(NAME, app_dir=app, extra=f"  secrets_file: {secrets_file}\n"
                                                              "  setup:\n    superuser: ''\n")
                    .replace("    email: admin@qms.test\n", ""))   # no TLS email: plain HTTP, no certificate
    standin_cmd("publish", app, "--name", NAME, "--message", "example app for bench/restart.py")
    head = subprocess.run(["git", "-C", str(app), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    make_export(app / "frontend" / "out", marker="bench-restart", git_sha=head)
    started = time.monotonic()
    result = fab(conf, "setup", timeout=1800)
    if result.returncode != 0:
        raise SystemExit(f"bench: fab setup failed ({result.returncode}):\n"
                         f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    print(f"  fab setup {time.monotonic() - started:5.1f} s", flush=True)
    UNIT[0] = "qms-backend@" + on_standin(f"readlink {APP_ROOT}/current").strip().rstrip("/").rsplit("/", 1)[-1]
    started = time.monotonic()
    on_standin(GUIDE_BACKEND)
    install_plain_unit(on_standin)
    print(f"  the guide's venv, .env, database copy and unit {time.monotonic() - started:5.1f} s "
          f"(ours: {UNIT[0]})", flush=True)
    return conf


# -- the load ------------------------------------------------------------------------------------------------
def get(host: str) -> str:
    """One GET /api/health/ through nginx, as qms.test, on a new connection: the status, or why none came."""
    conn = http.client.HTTPConnection(host, 80, timeout=REQUEST_TIMEOUT)
    try:
        conn.request("GET", HEALTH, headers={"Host": DOMAIN, "Connection": "close"})
        response = conn.getresponse()
        response.read()
        return str(response.status)
    except ConnectionRefusedError:
        return "refused"
    except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
        return "reset"
    except (socket.timeout, TimeoutError):
        return "timeout"
    except (OSError, http.client.HTTPException) as e:
        return type(e).__name__
    finally:
        conn.close()


def wait_health(host: str, timeout: float = 60.0) -> None:
    """Until /api/health/ answers 200 three times in a row through nginx (a few requests, well under the limit)."""
    deadline, ok = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        ok = ok + 1 if get(host) == "200" else 0
        if ok == 3:
            time.sleep(2)   # let nginx's rate-limit bucket for our address empty before the next window
            return
        time.sleep(0.3)
    raise SystemExit(f"bench: {HEALTH} on {host} did not answer 200 within {timeout:.0f} s")


@dataclass
class Outcome:
    sent: float      # s since the window started
    done: float
    result: str      # "200", "502", ..., "refused", "reset", "timeout"


@dataclass
class Run:
    outcomes: list[Outcome]
    command_start: float
    command_end: float
    command_ok: bool
    window: float
    memory: dict = field(default_factory=dict)       # what MEMORY printed after the run
    peak: dict = field(default_factory=dict)         # the highest PSS seen during the window

    @property
    def results(self) -> Counter:
        return Counter(o.result for o in self.outcomes)

    def longest_gap(self) -> float:
        """The longest time with no 200 coming back: between consecutive 200s (in the order they completed),
        from the window's start to the first, and from the last to the last answer of any kind."""
        oks = sorted(o.done for o in self.outcomes if o.result == "200")
        if not oks:
            return self.window
        points = [0.0, *oks, max(o.done for o in self.outcomes)]
        return max(b - a for a, b in zip(points, points[1:]))

    def answers_again(self) -> Optional[float]:
        """From the command's return to the first 200 of a request sent after it (resolution: 1/RATE)."""
        later = [o.done for o in self.outcomes if o.result == "200" and o.sent >= self.command_end]
        return min(later) - self.command_end if later else None


def under_load(host: str, command: Callable[[], bool]) -> Run:
    """The steady stream; `command` (the restart) runs LEAD s into it. Bounded: at most MAX_WINDOW s of sending,
    each request at most REQUEST_TIMEOUT s."""
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    start = time.monotonic()
    timing: dict[str, float | bool] = {}

    def one() -> None:
        sent = time.monotonic() - start
        result = get(host)
        with lock:
            outcomes.append(Outcome(sent, time.monotonic() - start, result))

    def restart() -> None:
        time.sleep(LEAD)
        timing["start"] = time.monotonic() - start
        try:
            timing["ok"] = command()
        except subprocess.TimeoutExpired:    # a hung restart is a failed one; the load still ends on time
            timing["ok"] = False
        timing["end"] = time.monotonic() - start

    def recovered() -> bool:
        with lock:
            return any(o.result == "200" and o.sent >= timing["end"] for o in outcomes)

    commander = threading.Thread(target=restart)
    commander.start()
    threads, i = [], 0
    while True:
        at = i / RATE
        elapsed = time.monotonic() - start
        if at >= MAX_WINDOW:
            break
        if at >= MIN_WINDOW and "end" in timing and at >= timing["end"] + TAIL and recovered():
            break
        if at > elapsed:
            time.sleep(at - elapsed)
        thread = threading.Thread(target=one, daemon=True)
        thread.start()
        threads.append(thread)
        i += 1
    window = i / RATE
    commander.join(timeout=300)
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT + 5)
    return Run(sorted(outcomes, key=lambda o: o.sent), timing.get("start", LEAD), timing.get("end", window),
               bool(timing.get("ok")), window)


# -- the variants --------------------------------------------------------------------------------------------
@dataclass
class Variant:
    name: str
    unit: str                       # whose memory is read
    needs: str                      # "ours" or "plain": which unit must be serving
    command: Callable[[], bool]     # the restart, as a user runs it; True when it exited 0
    runs: list[Run] = field(default_factory=list)


def variants(conf: Path) -> list[Variant]:
    def ours(mode: str) -> Callable[[], bool]:
        return lambda: fab(conf, "restart", "--mode", mode, timeout=120).returncode == 0

    def plain() -> bool:
        return subprocess.run(["ssh", "-F", str(ssh_config()), NAME, f"sudo systemctl restart {PLAIN}.service"],
                              capture_output=True, stdin=subprocess.DEVNULL, timeout=120).returncode == 0

    return [Variant("ours: restart --mode restart", UNIT[0], "ours", ours("restart")),
            Variant("ours: restart --mode reload", UNIT[0], "ours", ours("reload")),
            Variant("guide: systemctl restart (plain unit)", PLAIN, "plain", plain)]


def switch_to(needs: str, host: str) -> None:
    """Ours (the served release's socket + service, nginx proxying to its socket) or the plain unit on port 8000
    (nginx proxying there), never both; then wait for /api/health/ through nginx."""
    if needs == "plain":
        on_standin(f"sudo systemctl stop {UNIT[0]}.socket {UNIT[0]}.service && sudo systemctl start {PLAIN}.service"
                   f" && {nginx_upstream(to_port=True)}")
    else:
        on_standin(f"sudo systemctl stop {PLAIN}.service && sudo systemctl start {UNIT[0]}.socket {UNIT[0]}.service"
                   f" && {nginx_upstream(to_port=False)}")
    wait_health(host)


def memory(unit: str) -> dict:
    return json.loads(on_standin(f"sudo python3 -c {shlex.quote(MEMORY)} {unit}.service once"))


class PeakMemory:
    """The unit's memory sampled on the stand-in (over ssh, not through nginx) while the load runs."""

    def __init__(self, unit: str):
        self.unit, self.peak = unit, {}

    def __enter__(self):
        self.process = subprocess.Popen(
            ["ssh", "-F", str(ssh_config()), NAME, f"sudo python3 -c {shlex.quote(MEMORY)} {self.unit}.service peak"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(0.5)    # connected and sampling before the window starts
        return self

    def __exit__(self, *exc):
        try:
            out, _ = self.process.communicate(input="", timeout=30)   # closing its stdin ends the sampling
            self.peak = json.loads(out)
        except (subprocess.TimeoutExpired, ValueError):
            self.process.kill()
            self.process.wait()


def run_benchmark(all_variants: list[Variant], host: str) -> None:
    serving = "ours"
    for run in range(RUNS):
        for variant in all_variants[run:] + all_variants[:run]:
            if variant.needs != serving:
                switch_to(variant.needs, host)
                serving = variant.needs
            else:
                wait_health(host)
            with PeakMemory(variant.unit) as sampled:
                result = under_load(host, variant.command)
            result.peak = sampled.peak
            wait_health(host)
            time.sleep(1)    # a reload's old workers finish exiting
            result.memory = memory(variant.unit)
            variant.runs.append(result)
            failed = {k: v for k, v in result.results.items() if k != "200"}
            again = result.answers_again()
            print(f"  run {run + 1}/{RUNS}  {variant.name:<38} sent {len(result.outcomes):3d}  "
                  f"failed {sum(failed.values()):3d} {dict(failed) or ''}  gap {result.longest_gap():5.2f} s  "
                  f"command {result.command_end - result.command_start:5.2f} s"
                  f"{'' if result.command_ok else ' (FAILED)'}  answers again "
                  f"{'never' if again is None else f'{again:.2f} s'}  pss {result.memory['pss_kb'] // 1024} MB "
                  f"(peak {result.peak.get('pss_kb', 0) // 1024} MB, {result.peak.get('processes', 0)} processes)",
                  flush=True)
    if serving != "ours":
        switch_to("ours", host)


# -- the report ----------------------------------------------------------------------------------------------
def megabytes(value) -> str:
    """Bytes (an int or systemd's digits) as MB; systemd's `infinity` as none; anything else as n/a."""
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return f"{int(value) / 2**20:.0f} MB"
    return "none" if value == "infinity" else "n/a"


def report(all_variants: list[Variant], total: float) -> None:
    print(f"\nrestart under steady load: GET {HEALTH} through nginx at {RATE:g} r/s (new connection each), "
          f"stand-in `{NAME}`; {RUNS} runs per variant, interleaved\n")
    header = ("variant", "requests sent", "failed (by kind)", "longest gap without a 200", "answers again",
              "command", "memory: PSS (RSS)", "peak PSS during", "MemoryMax")
    rows, notes = [], []
    for v in all_variants:
        results = Counter()
        for r in v.runs:
            results.update(r.results)
        failed = {k: n for k, n in results.items() if k != "200"}
        kinds = ", ".join(f"{k} x{n}" for k, n in sorted(failed.items()))
        gaps = [r.longest_gap() for r in v.runs]
        again = [a for r in v.runs if (a := r.answers_again()) is not None]
        commands = [r.command_end - r.command_start for r in v.runs]
        mem = lambda key: statistics.median(r.memory.get(key) or 0 for r in v.runs)   # noqa: E731
        rows.append((
            v.name, f"{sum(results.values())}",
            f"{sum(failed.values())}" + (f" ({kinds})" if kinds else ""),
            f"{statistics.median(gaps):.2f} s (max {max(gaps):.2f})",
            (f"{statistics.median(again):.2f} s" if again else "never")
            + ("" if len(again) == len(v.runs) else f" ({len(v.runs) - len(again)} never)"),
            f"{statistics.median(commands):.2f} s" + ("" if all(r.command_ok for r in v.runs) else " FAILED"),
            f"{mem('pss_kb') / 1024:.0f} MB ({mem('rss_kb') / 1024:.0f} MB)",
            f"{max(r.peak.get('pss_kb', 0) for r in v.runs) / 1024:.0f} MB",
            megabytes(v.runs[-1].memory.get("unit_max"))))
        current = [r.memory["unit_current"] for r in v.runs if r.memory.get("unit_current") is not None]
        notes.append(f"  {v.name}: {statistics.median(r.memory.get('processes', 0) for r in v.runs):.0f} processes; "
                     f"systemd's MemoryCurrent "
                     f"{megabytes(int(statistics.median(current))) if current else 'not available'}; the whole box "
                     f"{megabytes(int(mem('box_anon')))} anonymous memory, {megabytes(int(mem('box_used')))} with "
                     f"page cache, of {megabytes(v.runs[-1].memory.get('box_limit'))}; at the peak "
                     f"{max(r.peak.get('processes', 0) for r in v.runs)} processes, the box "
                     f"{megabytes(max(r.peak.get('box_anon') or 0 for r in v.runs))} anonymous memory")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)   # noqa: E731
                                       for i, (c, w) in enumerate(zip(r, widths))) + " |"
    print(line(header))
    print("|" + "|".join(("-" * (w + 1) + ":") if i else "-" * (w + 2) for i, w in enumerate(widths)) + "|")
    for r in rows:
        print(line(r))
    print(f"\nrequests sent and failed: totals over {RUNS} runs. Gap, answers again, command and memory: median of "
          f"{RUNS} (gap: max too). An undisturbed stream has a gap of about {1 / RATE:.2f} s. 'answers again': "
          f"from the restart command's return to the first 200 of a request sent after it ({1 / RATE:.2f} s "
          f"resolution). Memory, read after each run: the summed PSS (RSS counts shared pages once per process) "
          f"of the unit's processes; peak: the highest PSS sampled every 0.1 s during the window (max of {RUNS}); "
          f"MemoryMax: the unit's limit.")
    print("\n".join(["memory (median after each run; peak: max during the windows):", *notes]))
    print(f"\ntotal run time {total:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", action="store_true", help="leave the stand-in running afterwards")
    args = parser.parse_args()
    if not shutil.which("ssh"):
        raise SystemExit("bench: ssh is missing (apt-get install openssh-client)")
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="qms-bench-restart-"))
    try:
        print(f"bench: booting a fresh stand-in `{NAME}` and deploying the example app (plain HTTP)", flush=True)
        standin_cmd("up", "--fresh", "--name", NAME)
        conf = deploy(work)
        host = address()
        wait_health(host)
        print(f"bench: deployed in {time.monotonic() - started:.0f} s; load goes to http://{host}{HEALTH} "
              f"as {DOMAIN}", flush=True)
        all_variants = variants(conf)
        run_benchmark(all_variants, host)
        report(all_variants, time.monotonic() - started)
    finally:
        if not args.keep:
            standin_cmd("down", "--name", NAME, check=False)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
