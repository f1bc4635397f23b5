"""`fab build` ended by Ctrl-C (SIGINT), SIGTERM or SIGKILL leaves nothing of the build running, and a second build
of the same app while one runs is refused naming it. The frontend here is a stand-in for Next's: `npm run build`
starts a shell, which starts node, which starts the node that works (as `next build` starts its workers); real npm,
no network."""
import json
import os
import signal
import subprocess
import time

import pytest

from tests.conftest import REPO, assert_one_line_error, fab
from tests.standin.harness import project_exe

# the process that works: found by its unique argument after the build was stopped
WORKER = "setTimeout(() => {}, 120000) // qms-build-worker {tag}"
BUILD = """const {{ spawn }} = require("child_process");
spawn(process.execPath, ["-e", {worker}], {{ stdio: "inherit" }});
console.log("building now");
setTimeout(() => {{}}, 120000);
"""


@pytest.fixture
def app(tmp_path):
    frontend = tmp_path / "app" / "frontend"
    frontend.mkdir(parents=True)
    tag = f"{os.getpid()}-{time.monotonic_ns()}"
    (frontend / "package.json").write_text(json.dumps({"name": "slow", "private": True,
                                                       "scripts": {"build": "node build.js"}}))
    (frontend / "package-lock.json").write_text(json.dumps({"name": "slow", "lockfileVersion": 3, "packages": {}}))
    (frontend / "node_modules").mkdir()
    (frontend / "node_modules" / ".package-lock.json").write_text("{}")   # installed: no `npm ci`
    (frontend / "build.js").write_text(BUILD.format(worker=json.dumps(WORKER.replace("{tag}", tag))))
    (frontend / "next.config.mjs").write_text("export default { output: 'export' };\n")
    conf = tmp_path / "production.yaml"
    conf.write_text(f"qms:\n  host: qms-prod\n  env: production\n  app_dir: {tmp_path / 'app'}\n"
                    "  domains: [qms.example.com]\n")
    return conf, tag


def running(tag: str) -> list[str]:
    ps = subprocess.run(["ps", "-ewwo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in ps.splitlines() if f"qms-build-worker {tag}" in line and "ps -ewwo" not in line]


def start_build(conf, log):
    return subprocess.Popen([project_exe("fab"), "-f", str(conf), "build"], cwd=REPO, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_for(condition, what: str, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_a_stopped_build_leaves_nothing_running(app, tmp_path, sig):
    conf, tag = app
    log = tmp_path / "build.log"
    build = start_build(conf, log)
    try:
        wait_for(lambda: "building now" in log.read_text() and running(tag), "the build never started")
        build.send_signal(sig)
        build.wait(timeout=30)
        wait_for(lambda: not running(tag), f"still running after {sig.name}: {running(tag)}", seconds=10)
        if sig != signal.SIGKILL:   # Ctrl-C, and SIGTERM taken as one: the tool ends as it does on Ctrl-C
            assert "Traceback" not in log.read_text()
            assert build.returncode != 0
    finally:
        build.kill()
        for line in running(tag):
            os.kill(int(line.split()[0]), signal.SIGKILL)


def test_a_second_build_of_the_same_app_is_refused_naming_the_running_one(app, tmp_path):
    conf, tag = app
    first = start_build(conf, tmp_path / "first.log")
    try:
        wait_for(lambda: "building now" in (tmp_path / "first.log").read_text(), "the first build never started")
        second = fab("-f", conf, "build", timeout=60)
        line = assert_one_line_error(second, "is running already", f"pid {first.pid}", "build")
        assert str(conf.parent / "app" / "frontend") in line
        assert first.poll() is None   # the running one goes on
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=30)
    wait_for(lambda: not running(tag), "the first build's worker still runs", seconds=10)
