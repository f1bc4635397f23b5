"""The backend's systemd units, restarts without downtime, and logs (guide section 5: `status=203/EXEC` because
the unit ran `uv` from ~/.local/bin; troubleshooting: journal and nginx logs).

Socket activation keeps the port open in systemd while uvicorn restarts: requests wait in the socket's queue
instead of failing. When only code changed, a reload (SIGHUP) replaces the workers one by one.
"""
import posixpath
import shlex
import time

from invoke import Collection, task

from .core import backend_plan as plan
from .core.errors import UserError
from .core.runtime import host_of, settings_of
from .core.smoke import health_url


def install_units(host, s) -> bool:
    """Render, check on the server (ExecStart, systemd-analyze verify), install; daemon-reload only on change."""
    units = plan.render_units(s)
    program = plan.exec_start_program(units["service"])
    executable = host.probe(f"test -x {shlex.quote(program)}").ok
    problem = plan.exec_start_problem(units["service"], executable)
    if problem:
        raise UserError(f"[{host.name}] refusing to install {s.backend.unit}.service: {problem}")
    paths = plan.unit_paths(s)
    if not host.dry:
        staging = host.run("mktemp -d /tmp/qms-units.XXXXXXXX").stdout.strip()
        try:
            for kind, text in units.items():
                host.put(posixpath.join(staging, posixpath.basename(paths[kind])), text, 0o644, s.user,
                         show_diff=False, quiet=True)
            checked = host.probe("systemd-analyze verify " + " ".join(
                shlex.quote(posixpath.join(staging, posixpath.basename(paths[k]))) for k in ("socket", "service"))
                + " 2>&1")
        finally:
            host.run(f"rm -rf -- {shlex.quote(staging)}")
        if checked.failed or checked.stdout.strip():
            raise UserError(f"[{host.name}] systemd-analyze verify rejects the unit: "
                            f"{(checked.stdout.strip().splitlines() or ['exit ' + str(checked.exited)])[0]}")
    changed = [host.put(paths[kind], text, 0o644, "root", show_diff=True) for kind, text in units.items()]
    if any(changed):
        host.sudo("systemctl daemon-reload")
    host.sudo(f"systemctl enable -q {shlex.quote(s.backend.unit)}.socket {shlex.quote(s.backend.unit)}.service "
              f"&& systemctl start {shlex.quote(s.backend.unit)}.socket")
    return any(changed)


@task
def service(c):
    """Install the backend's systemd units, checked on the server.

    Render the backend's systemd units (absolute paths, hardening), verify them on the server, install them.
    """
    s = settings_of(c)
    host = host_of(c, s)
    changed = install_units(host, s)
    host.say(f"{s.backend.unit} units {'installed' if changed else 'unchanged'}"
             f"{': run restart to start it' if changed else ''}")
    return "systemd units" if changed else None


def needs_restart(host, s) -> str:
    """'' when a reload is enough (only code changed), else why a full restart is needed."""
    unit = shlex.quote(s.backend.unit)
    state = host.probe(f"systemctl show -p ActiveState -p ActiveEnterTimestamp --value {unit}.service").stdout.split("\n")
    if not state or state[0].strip() != "active":
        return "it is not running"
    started = host.probe(f"date -d {shlex.quote(state[1].strip())} +%s").stdout.strip()
    newer = host.probe(" ; ".join(
        f"[ $(stat -c %Y {shlex.quote(p)} 2>/dev/null || echo 0) -gt {started or 0} ] && echo {shlex.quote(p)}"
        for p in (*plan.unit_paths(s).values(), plan.env_file(s), posixpath.join(plan.project_dir(s), "uv.lock"),
                  plan.venv_bin(s, "python")))).stdout.split()
    return f"{', '.join(newer)} changed since it started" if newer else ""


def journal_tail(host, s, lines: int = 50) -> str:
    return host.probe(f"journalctl -u {shlex.quote(s.backend.unit)}.service -n {lines} --no-pager -o cat",
                      sudo=True).stdout


def health(host, s) -> list[str]:
    """Problems with the health endpoint answered directly by uvicorn and through nginx (on the server)."""
    path = health_url(s)
    domain = (s.domains or ["localhost"])[0]
    checks = {
        "directly": f"curl -s --noproxy '*' -o /dev/null -w '%{{http_code}}' --max-time 5 "
                    f"-H 'Host: 127.0.0.1' {shlex.quote(f'http://127.0.0.1:{s.backend.port}{path}')}",
        "through nginx": f"curl -s -k -L --noproxy '*' -o /dev/null -w '%{{http_code}}' --max-time 5 "
                         f"--resolve {domain}:80:127.0.0.1 --resolve {domain}:443:127.0.0.1 "
                         f"{shlex.quote(f'http://{domain}{path}')}",
    }
    return [f"{path} {how} answers {code or 'nothing'}" for how, command in checks.items()
            if (code := host.probe(command).stdout.strip()) != "200"]


def workers(host, s) -> set[str]:
    """PIDs of uvicorn's worker processes (children of the main process started by multiprocessing)."""
    main = host.probe(f"systemctl show -p MainPID --value {shlex.quote(s.backend.unit)}.service").stdout.strip()
    return set(host.probe(f"pgrep -P {main or 0} -f multiprocessing-fork").stdout.split()) if main != "0" else set()


SETTLED_CHECKS = 4   # a stable set of workers answering an error this many times in a row has failed


def wait_healthy(host, s, replaced: set, timeout: float = 30.0) -> None:
    """Healthy means: active, none of the `replaced` workers left, the same workers on two checks in a row (a
    worker that cannot import the app is restarted over and over), and /api/health/ answering."""
    unit = shlex.quote(s.backend.unit)
    deadline = time.monotonic() + timeout
    problems, last, wrong_answers = ["not checked"], None, 0
    while time.monotonic() < deadline:
        active = host.probe(f"systemctl is-active {unit}.service").stdout.strip()
        if active == "failed":
            problems = ["the service failed"]
            break
        now = workers(host, s)
        if active != "active":
            problems = [f"the service is {active}"]
        elif not now or now & replaced or now != last:
            problems = ["its workers are not up (yet)"]
        else:
            problems = health(host, s)
            if not problems:
                return
            # Settled workers answering an HTTP error will not get better by waiting: stop after a few checks.
            wrong_answers = wrong_answers + 1 if not any(p.endswith("nothing") for p in problems) else 0
            if wrong_answers >= SETTLED_CHECKS:
                break
        last = now
        time.sleep(0.5)
    print(journal_tail(host, s), end="")
    if problems[0].endswith(" 404"):   # the app runs but has nothing there: the setting, not the app, is wrong
        raise UserError(f"[{host.name}] {s.backend.unit} runs but {problems[0]}: set qms.smoke.health_path to the "
                        f"app's health endpoint inside {s.backend.api_prefix}, or add one (README: Prepare your app)")
    raise UserError(f"[{host.name}] {s.backend.unit} is not healthy: {problems[0]} (its journal is above)")


@task(help={"mode": "auto (reload when only code changed, else restart), reload, or restart"})
def restart(c, mode="auto"):
    """Restart or reload the backend without dropping requests.

    Restart the backend without dropping requests (or reload it gracefully), then wait for its health endpoint.
    """
    s = settings_of(c)
    if mode not in ("auto", "reload", "restart"):
        raise UserError(f"--mode must be auto, reload or restart, not {mode!r}")
    host = host_of(c, s)
    unit = shlex.quote(s.backend.unit)
    if mode == "auto":
        reason = needs_restart(host, s)
        mode = "restart" if reason else "reload"
        host.say(f"restart: {reason}" if reason else "reload: only code changed")
    started = time.monotonic()
    before = workers(host, s)
    host.sudo(f"systemctl start {unit}.socket && systemctl {mode} {unit}.service")
    if host.dry:
        return None
    wait_healthy(host, s, replaced=before)
    host.say(f"{s.backend.unit} {mode}ed and healthy in {time.monotonic() - started:.1f} s "
             f"({health_url(s)} answers directly and through nginx)")
    return f"{mode}ed"


LOGS = {"backend": "journalctl -u {unit}.service --no-pager -o short-iso -n {n}{follow}",
        "nginx": "tail -n {n}{follow_tail} /var/log/nginx/error.log",
        "access": "tail -n {n}{follow_tail} /var/log/nginx/access.log"}


@task(help={"which": "backend (the journal), nginx (error log) or access (nginx access log)",
            "n": "how many lines (default 50)", "follow": "keep printing new lines (Ctrl-C to stop)"})
def logs(c, which="backend", n=50, follow=False):
    """Show the backend journal or nginx's error/access log.

    Show the backend's journal, or nginx's error or access log (-n N lines, --follow).
    """
    s = settings_of(c)
    if which not in LOGS:
        raise UserError(f"--which must be one of {', '.join(LOGS)}, not {which!r}")
    host = host_of(c, s)
    command = LOGS[which].format(unit=shlex.quote(s.backend.unit), n=int(n), follow=" -f" if follow else "",
                                 follow_tail=" -F" if follow else "")
    host.run(command, sudo=True, write=False, hide=False, warn=True)


ns = Collection(service, restart, logs)
