"""The guard every server command runs under (tasks/core/host.py, GUARD), run here by bash as sshd runs it: output
and exit code pass through untouched, and when the command's input ends (its SSH channel closed: the tool was
killed, or closed it on Ctrl-C) the command and everything it started end too, a process ignoring SIGTERM included."""
import subprocess
import time

from tasks.core.host import guarded

# a command that starts children, as `uv sync` or `git archive | tar -x` do, the last one deaf to SIGTERM; each
# found by the unique fraction of its seconds
TREE = "sleep 300.{m} & (sleep 301.{m}; true) & trap '' TERM; sleep 302.{m}"


def alive(marker: str) -> list[str]:
    ps = subprocess.run(["ps", "-ewwo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in ps.splitlines() if marker in line and "bash -c" not in line]


def start(command: str) -> subprocess.Popen:
    return subprocess.Popen(["bash", "-c", guarded(command)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_output_and_exit_code_pass_through_and_the_guard_does_not_hold_the_channel():
    started = time.monotonic()
    run = start("echo out; echo err >&2; exit 3")
    out, err = run.stdout.read(), run.stderr.read()   # the input stays open, as Fabric leaves it
    assert (run.wait(timeout=10), out, err) == (3, "out\n", "err\n")
    run.stdin.close()
    assert time.monotonic() - started < 2


def test_the_end_of_its_input_ends_the_command_and_all_it_started():
    marker = str(time.monotonic_ns())[-9:]
    run = start(TREE.format(m=marker))
    try:
        deadline = time.monotonic() + 10
        while len(alive(marker)) < 3:
            assert time.monotonic() < deadline, alive(marker)
            time.sleep(0.05)
        run.stdin.close()   # what sshd does when the channel goes
        run.wait(timeout=10)
        deadline = time.monotonic() + 8   # SIGTERM, then SIGKILL after 5 s for the one that ignores it
        while alive(marker):
            assert time.monotonic() < deadline, f"still running: {alive(marker)}"
            time.sleep(0.1)
    finally:
        for line in alive(marker):
            subprocess.run(["kill", "-9", line.split()[0]])
