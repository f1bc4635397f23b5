"""The backend's systemd units, one instance per release, started and verified before it serves (guide section 5:
`status=203/EXEC` because the unit ran `uv` from ~/.local/bin; troubleshooting: journal and nginx logs).

Each release runs as its own instance, unit@<release id>, on its own socket: a new release starts beside the
served one and must answer its health endpoint before `current` switches to it. Socket activation keeps the socket
open in systemd while uvicorn restarts: requests wait in its queue instead of failing.
"""
import posixpath
import shlex
import time
from typing import Optional

from invoke import Collection, task

from .core import backend_plan as plan
from .core import facts
from .core.errors import UserError
from .core.runtime import host_of, settings_of
from .core.smoke import health_url
from .lock import locked, read_only


def install_units(host, s, release: str) -> bool:
    """Render the template units, check them on the server against release `release` (ExecStart, systemd-analyze
    verify), install; daemon-reload only on change."""
    units = plan.render_units(s)
    # the program where the release's link leads, named as the user knows it (a plan made no release to ask)
    program = plan.venv_bin(s, "uvicorn", release)
    executable = None if host.dry else host.probe(f"test -x {shlex.quote(program)}").ok
    problem = plan.exec_start_problem(units["service"], executable, program)
    if problem:
        raise UserError(f"[{host.name}] refusing to install {s.backend.unit}@.service: {problem}")
    paths = plan.unit_paths(s)
    if not host.dry:
        staging = host.run("mktemp -d /tmp/qms-units.XXXXXXXX").stdout.strip()
        try:
            for kind, text in units.items():
                host.put(posixpath.join(staging, posixpath.basename(paths[kind])), text, 0o644, s.user,
                         show_diff=False, quiet=True)
            instances = [posixpath.join(staging, f"{plan.instance(s, release)}.{k}") for k in ("socket", "service")]
            checked = host.probe(" && ".join(f"ln -s {shlex.quote(posixpath.join(staging, posixpath.basename(paths[k])))}"
                                             f" {shlex.quote(i)}" for k, i in zip(("socket", "service"), instances))
                                 + " && systemd-analyze verify " + " ".join(map(shlex.quote, instances)) + " 2>&1")
        finally:
            host.run(f"rm -rf -- {shlex.quote(staging)}")
        if checked.failed or checked.stdout.strip():
            raise UserError(f"[{host.name}] systemd-analyze verify rejects the unit: "
                            f"{(checked.stdout.strip().splitlines() or ['exit ' + str(checked.exited)])[0]}")
    changed = [host.put(paths[kind], text, 0o644, "root", show_diff=True) for kind, text in units.items()]
    if any(changed):
        host.sudo("systemctl daemon-reload")
    return any(changed)


def service_step(host, s, release: str) -> Optional[str]:
    return "systemd units" if install_units(host, s, release) else None


@task
@locked()
def service(c):
    """Install the backend's systemd template units, checked on the server.

    Render the backend's systemd template units (one instance per release: absolute paths, the app's own user,
    hardening), verify them on the server against the served release, install them.
    """
    s = settings_of(c)
    host = host_of(c, s)
    changed = install_units(host, s, served_release(host, s))
    host.say(f"{s.backend.unit}@.service {'installed' if changed else 'unchanged'}"
             f"{': run restart so the served release runs under it' if changed else ''}")
    return "systemd units" if changed else None


def served(host, s) -> Optional[str]:
    """The release `current` points at (what nginx and the backend serve), or None."""
    target = host.probe(f"readlink {shlex.quote(plan.release_dir(s))}").stdout.strip()
    return target.rstrip("/").rsplit("/", 1)[-1] or None


def served_release(host, s) -> str:
    """The served release, or a one-line refusal when there is none yet."""
    release = served(host, s)
    if not release:
        raise UserError(f"[{host.name}] no release is served yet ({plan.release_dir(s)} is missing): run setup")
    return release


def journal_tail(host, s, release: str = "*", lines: int = 50) -> str:
    return host.probe(f"journalctl -u {shlex.quote(plan.instance(s, release))}.service -n {lines} --no-pager -o cat",
                      sudo=True).stdout


def state(host, s, release: str) -> facts.InstanceState:
    return facts.parse_instance_state(host.probe(facts.instance_state_command(
        plan.instance(s, release), plan.socket_path(s, release), health_url(s)), sudo=True).stdout)


SETTLED_CHECKS = 4   # a stable set of workers answering an error this many times in a row has failed


def wait_healthy(host, s, release: str, replaced: frozenset, timeout: float = 30.0) -> None:
    """Healthy means: active, none of the `replaced` workers left, the same workers on two checks in a row (a
    worker that cannot import the app is restarted over and over), and the health endpoint answering 200."""
    deadline = time.monotonic() + timeout
    problem, last, wrong_answers = "not checked", None, 0
    while time.monotonic() < deadline:
        now = state(host, s, release)
        if now.active == "failed":
            problem = "the service failed"
            break
        if now.active != "active":
            problem = f"the service is {now.active}"
        elif not now.workers or now.workers & replaced or now.workers != last:
            problem = "its workers are not up (yet)"
        elif now.health == "200":
            return
        else:
            problem = f"{health_url(s)} answers {now.health or 'nothing'}"
            # Settled workers answering an HTTP error will not get better by waiting: stop after a few checks.
            wrong_answers = wrong_answers + 1 if now.health else 0
            if wrong_answers >= SETTLED_CHECKS:
                break
        last = now.workers
        time.sleep(0.5)
    print(journal_tail(host, s, release), end="")
    if problem.endswith(" 404"):   # the app runs but has nothing there: the setting, not the app, is wrong
        raise UserError(f"[{host.name}] release {release} runs but {problem}: set qms.smoke.health_path to the "
                        f"app's health endpoint inside {s.backend.api_prefix}, or add one (README: Prepare your app)")
    raise UserError(f"[{host.name}] release {release} is not healthy: {problem} (its journal is above)")


def start(host, s, release: str) -> Optional[str]:
    """Start release `release` beside the served one, on its own socket, enabled for boot; healthy or refused."""
    unit = shlex.quote(plan.instance(s, release))
    if host.dry:
        host.say(f"would start {plan.instance(s, release)} and wait for {health_url(s)} on its socket")
        return None
    stop_strays(host, s, {served(host, s), release})   # their memory is what the new one needs
    started = time.monotonic()
    before = state(host, s, release).workers
    host.sudo(f"systemctl enable -q {unit}.socket {unit}.service && systemctl start {unit}.socket && "
              f"systemctl restart {unit}.service")
    try:
        wait_healthy(host, s, release, replaced=before)
    except UserError:
        stop(host, s, release)
        raise
    host.say(f"{plan.instance(s, release)} healthy in {time.monotonic() - started:.1f} s ({health_url(s)} answers "
             "on its socket)")
    return f"started {plan.instance(s, release)}"


def live_instances(host, s) -> set[str]:
    """The releases whose backend instance runs (or starts, or listens): asked of systemd, not of what a run did."""
    return facts.parse_live_instances(host.probe(facts.instances_command(s.backend.unit), sudo=True).stdout,
                                      s.backend.unit)


def stop_strays(host, s, keep) -> list[str]:
    """Stop every running instance but those of the releases in `keep`. A deploy killed after its start (or after
    the switch) leaves one that serves nothing and holds memory the 1 GB box needs."""
    strays = sorted(live_instances(host, s) - set(keep))
    stop(host, s, *strays)
    return strays


def is_warm(host, s, release: str) -> bool:
    """Running, answering its health check, and started after the .env last changed (a standby started before
    `env` wrote new values still holds the old ones): a rollback to it needs no start."""
    now = state(host, s, release)
    if not (now.active == "active" and now.workers and now.health == "200"):
        return False
    return bool(facts.parse_started_after(host.probe(facts.started_after_command(
        plan.instance(s, release), plan.env_file(s)), sudo=True).stdout))


def stop(host, s, *releases: Optional[str]) -> None:
    """Stop and disable releases' instances (after the switch away from them: requests in flight finish)."""
    units = [shlex.quote(f"{plan.instance(s, rid)}.{kind}")
             for rid in releases if rid for kind in ("service", "socket")]
    if units:
        host.sudo(f"systemctl disable -q --now {' '.join(units)}", warn=True)


@task(help={"mode": "reload (workers replaced one by one: code or settings of the app changed) or restart"})
@locked()
def restart(c, mode="restart"):
    """Restart or reload the served release's backend without dropping requests.

    Restart the served release's backend (requests wait in its socket meanwhile) or reload it gracefully, then
    wait for its health endpoint. Needed after `env` changed the .env; deploy and rollback start releases themselves.
    """
    s = settings_of(c)
    if mode not in ("reload", "restart"):
        raise UserError(f"--mode must be reload or restart, not {mode!r}")
    host = host_of(c, s)
    return restart_release(host, s, served_release(host, s), mode)


def restart_release(host, s, release: str, mode: str) -> Optional[str]:
    unit = shlex.quote(plan.instance(s, release))
    started = time.monotonic()
    before = state(host, s, release).workers
    host.sudo(f"systemctl start {unit}.socket && systemctl {mode} {unit}.service")
    if host.dry:
        return None
    wait_healthy(host, s, release, replaced=before)
    host.say(f"{plan.instance(s, release)} {mode}ed and healthy in {time.monotonic() - started:.1f} s")
    return f"{mode}ed"


def restart_if_changed(host, s, served: str, changed_steps) -> Optional[str]:
    """The served release already holds the commit and the export: restart it when `changed_steps` (the run's
    steps that changed something, asked by name) says the .env or the units changed, or when its instance does not
    run healthy (a deploy killed after the switch, a crash): decided from the server, not from the last run."""
    changed = changed_steps("env", "service")
    if not host.dry:
        now = state(host, s, served)
        if now.active != "active" or now.health != "200":
            changed = [*changed, f"its backend is {now.active}, health {now.health or 'no answer'}"]
    if not changed:
        host.say(f"release {served} already serves this commit and export: nothing to ship")
        return None
    if host.dry:
        host.say(f"would restart {plan.instance(s, served)} ({', '.join(changed)} changed)")
        return None
    return restart_release(host, s, served, "restart")


LOGS = {"backend": "journalctl -u {unit}'@*.service' --no-pager -o short-iso -n {n}{follow}",
        "nginx": "tail -n {n}{follow_tail} /var/log/nginx/error.log",
        "access": "tail -n {n}{follow_tail} /var/log/nginx/access.log"}


@task(help={"which": "backend (the journal), nginx (error log) or access (nginx access log)",
            "n": "how many lines (default 50)", "follow": "keep printing new lines (Ctrl-C to stop)"})
@read_only
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
