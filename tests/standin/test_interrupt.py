"""Deploys interrupted anywhere, as a user does it (Ctrl-C), as a CI job's timeout does (SIGTERM) or as the machine
does it (SIGKILL), under steady traffic, on one stand-in: at each step boundary (the `== <step>` line that starts
it) and in the middle of the upload, the dependencies, a slow migration and the start. After each: every answer was
a 200 of one complete version (frontend page and API of the same release), nothing of the dead deploy keeps running
on the server, and the next deploy needs no unlock; at some points a deploy runs to the end and serves the new
commit, with no backend instance running but the served one's and the standby's."""
import re
import signal
import threading
import time
from collections import Counter

import pytest

from tests.standin.app_changes import set_backend_version
from tests.standin.conftest import (deploy_in_background, example_app_module, get, served, stamp_export,
                                    wait_for_output)

pytestmark = [pytest.mark.standin, pytest.mark.timeout(900)]   # about 9 min with its set-up on a busy machine

INT, TERM, KILL = signal.SIGINT, signal.SIGTERM, signal.SIGKILL
# (the line of the tool's output to wait for, seconds more, the signal, then a deploy to the end): each deploy is
# interrupted at the next point; a full deploy follows where a user would see the site change hands
POINTS = [("== env", 0, KILL, False), ("== git-pull", 0, INT, False), ("== release", 0, KILL, False),
          ("== deps", 0.3, KILL, False), ("== upload", 0, INT, False), ("== upload", 0.6, KILL, True),
          ("== app-settings", 0, KILL, False), ("pending migrations", 2, KILL, False),
          ("pending migrations", 2, INT, False), ("== collectstatic", 0, TERM, False), ("== seal", 0, KILL, False),
          ("== service", 0, INT, False), ("== start", 1, INT, False), ("== switch", 0, KILL, False),
          ("== nginx-reload", 0, KILL, True), ("== smoke", 0, INT, False), ("== retire", 0, KILL, True)]
# what the tool starts on the server on a deploy's behalf: none may outlive the deploy
LEFTOVERS = re.compile(r"\buv\b|git archive|tar -x|manage\.py|release_agent|compileall")


box = example_app_module("qmskill", "box")


class Versions:
    """Steady traffic (5 requests a second, under the site's rate limit) alternating between the frontend's home
    page and the API's version: each answer's status and the version it came from."""

    def __init__(self, box):
        self.box, self.seen, self.stop = box, [], threading.Event()

    def one(self, path: str) -> tuple:
        code, body = get(self.box, path)
        found = re.search(r"QMS frontend (v\d+)", body) if path == "/" else re.search(r'"version": "(v\d+|1)"', body)
        return path, code, found.group(1) if found else None

    def run(self):
        while not self.stop.is_set():
            for path in ("/", "/api/version/"):
                self.seen.append(self.one(path))
                time.sleep(0.2)

    def __enter__(self):
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    def window(self):
        """The answers since the last call."""
        taken, self.seen = self.seen, []
        return taken


def publish(box, n: int, **export) -> str:
    """Commit version v<n> (backend and a stamped frontend export); returns it."""
    version = f"v{n}"
    set_backend_version(box.app, version)
    box.publish(f"version {version}")
    stamp_export(box, version, **export)
    return version


def slow_migration(box, n: int) -> None:
    """A migration that takes seconds (a data migration on a big table), so that a deploy can be killed in it."""
    migrations = box.app / "backend/quality/migrations"
    last = sorted(p.stem for p in migrations.glob("0*.py"))[-1]
    (migrations / f"{int(last[:4]) + 1:04d}_slow_{n}.py").write_text(
        "import time\n\nfrom django.db import migrations\n\n\n"
        "class Migration(migrations.Migration):\n"
        f"    dependencies = [(\"quality\", \"{last}\")]\n"
        "    operations = [migrations.RunPython(lambda apps, schema: time.sleep(4), migrations.RunPython.noop)]\n")


def interrupt_at(box, log, line: str, delay: float, sig) -> str:
    """A deploy signalled `delay` s after `line` appears in its output; returns its output."""
    deploy = deploy_in_background(box, log)
    wait_for_output(deploy, log, line, timeout=240)
    time.sleep(delay)
    assert deploy.poll() is None, f"it ended before the signal at {line!r} + {delay} s:\n" + log.read_text()[-3000:]
    deploy.send_signal(sig)
    deploy.wait(timeout=120)
    return log.read_text()


def served_pair(box) -> tuple:
    """The versions of the frontend page and the API, read together after things settled."""
    return Versions(box).one("/")[1:], Versions(box).one("/api/version/")[1:]


def leftovers(box) -> list[str]:
    return [line for line in box.ssh("ps -ewwo pid,args").stdout.splitlines() if LEFTOVERS.search(line)]


def running_instances(box) -> set:
    out = box.ssh("systemctl list-units --plain --no-legend --state=running 'qms-backend@*.service'").stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def check_full_deploy(box, version: str, traffic=None, before: str = "") -> list[str]:
    """A deploy run to the end: it serves `version`, its backend runs, and no other but the standby's (the release
    sealed before it) may."""
    result = box.fab("deploy", timeout=600)
    if result.returncode != 0:
        return [f"the full deploy of {version} failed: {result.stderr.strip()}"]
    problems = []
    if served_pair(box) != ((200, version), (200, version)):
        problems.append(f"after the full deploy of {version}: serves {served_pair(box)}")
    now = served(box)
    sealed = box.ssh("cd ~/QMS/releases && ls -tr */release.json | cut -d/ -f1").stdout.split()
    standby = sealed[sealed.index(now) - 1] if now in sealed and sealed.index(now) > 0 else None
    running = running_instances(box)   # the standby runs only if the deploy found it running: it starts nothing
    allowed = {f"qms-backend@{r}.service" for r in (now, standby) if r}
    if f"qms-backend@{now}.service" not in running or not running <= allowed:
        problems.append(f"after the full deploy of {version}: {running} run, {now} is served, "
                        f"{standby} is the standby")
    answers = traffic.window() if traffic else []
    if {code for _, code, _ in answers} - {200} or not {v for _, _, v in answers} <= {before, version}:
        problems.append(f"during the full deploy of {version}: answers {Counter(answers)}")
    return problems


def test_deploys_interrupted_anywhere_leave_one_complete_version_and_the_next_deploy_finishes(box):
    started = time.monotonic()
    publish(box, 1)
    check_full_deploy(box, "v1")
    before, report, problems = "v1", [], []
    with Versions(box) as traffic:
        for n, (line, delay, sig, full) in enumerate(POINTS, start=2):
            if line == "pending migrations":
                slow_migration(box, n)
            version = publish(box, n, **({"extra_files": 100, "extra_bytes": 20 << 20, "seed": n}
                                         if line == "== upload" else {}))
            t0 = time.monotonic()
            output = interrupt_at(box, box.tmp / f"interrupt-{n}.log", line, delay, sig)
            took = time.monotonic() - t0
            time.sleep(1.5)   # what the server does when a channel closes, done
            left = leftovers(box)
            answers = traffic.window()
            front, api = served_pair(box)
            where = f"{sig.name} at {line!r} +{delay} s"
            report.append(f"{where}: {took:.1f} s, {len(answers)} answers, serves {front[1]}, "
                          f"{len(running_instances(box))} backend(s) running")
            if "Traceback" in output:
                problems.append(f"{where}: a traceback")
            if sig != KILL and not re.search(r"deploy (interrupted|rolled back) in", output):
                problems.append(f"{where}: the deploy did not undo its run and say so")
            if {code for _, code, _ in answers} != {200} or not {v for _, _, v in answers} <= {before, version}:
                problems.append(f"{where}: answers {Counter(answers)} (not all 200 of {before} or {version})")
            if not (front[0] == api[0] == 200 and front[1] == api[1]):
                problems.append(f"{where}: the frontend serves {front}, the API {api}")
            if left:
                problems.append(f"{where}: still running on the server: {left}")
            before = front[1]
            if full:
                problems += check_full_deploy(box, version, traffic, before)
                before = version
        problems += check_full_deploy(box, version, traffic, before)   # again: nothing to ship, nothing left over
    # The served release's backend went down (a deploy killed while it restarted it, a crash): a deploy of the
    # commit it serves has nothing to ship, and must still see that and start it, not trust what the last run did.
    served = box.ssh("basename $(readlink ~/QMS/current)").stdout.strip()
    box.ssh(f"sudo systemctl stop qms-backend@{served}.service qms-backend@{served}.socket")
    assert get(box, "/api/version/")[0] != 200
    problems += check_full_deploy(box, version)
    print("\n".join(report))
    print(f"{len(POINTS)} interruptions and {sum(p[3] for p in POINTS) + 3} full deploys in "
          f"{time.monotonic() - started:.0f} s")
    assert not problems, "\n".join(problems)
