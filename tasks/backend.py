"""The Django backend on the server (guide section 5, first deploy and daily update): dependencies with uv,
migrations after a database backup, static files, and any manage.py command, all in the service's environment."""
import json
import posixpath
import shlex
from datetime import datetime, timezone

from invoke import Collection, task

from .core import backend_plan as plan
from .core.errors import UserError
from .backups import create_backup
from .core.runtime import host_of, settings_of

UV_HOME = "/opt/uv"   # where deps installs uv from PyPI when the server has none


def find_uv(host, s) -> str:
    home = host.probe(f"getent passwd {shlex.quote(s.user)} | cut -d: -f6").stdout.strip() or f"/home/{s.user}"
    candidates = " ".join(shlex.quote(p) for p in plan.uv_candidates(s, home))
    return host.probe(f"for p in {candidates}; do if [ -x \"$p\" ]; then echo \"$p\"; break; fi; done").stdout.strip()


def install_uv(host) -> str:
    """uv from PyPI into its own virtualenv (no `curl | sh` from the internet), called by absolute path."""
    made = host.sudo(f"python3 -m venv {UV_HOME} && {UV_HOME}/bin/pip install -q uv", warn=True, timeout=600)
    if made is not None and made.failed:
        raise UserError(f"[{host.name}] could not install uv from PyPI into {UV_HOME}: "
                        f"{(made.stderr.strip().splitlines() or ['no output'])[-1]} (is python3-venv installed?)")
    return f"{UV_HOME}/bin/uv"


def manage_run(host, s, args: str, hide: bool = True, warn: bool = False):
    return host.run(plan.manage_command(s, args), sudo=True, hide=hide, warn=warn, timeout=1800)


@task
def deps(c):
    """Install the backend's locked dependencies with `uv sync --locked --no-dev` (uv by absolute path)."""
    s = settings_of(c)
    host = host_of(c, s)
    uv = find_uv(host, s)
    if not uv:
        host.say("uv is not on the server: installing it from PyPI")
        uv = install_uv(host)
    directory = plan.backend_dir(s)
    result = host.run(f"cd {shlex.quote(directory)} && UV_PYTHON_DOWNLOADS=never {shlex.quote(uv)} sync --locked "
                      "--no-dev 2>&1", warn=True, timeout=1800)
    if result is None:
        return
    if result.failed:
        tail = [line for line in result.stdout.splitlines() if line.strip()][-3:]
        raise UserError(f"[{host.name}] uv sync failed in {directory}: {' | '.join(tail) or 'no output'}")
    summary = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith(("Installed",
                                                                                              "Uninstalled",
                                                                                              "Audited"))]
    host.say(f"dependencies in sync ({uv}): {'; '.join(summary) or 'nothing to do'}")


@task
def migrate(c):
    """Show the pending migrations, back up the database (online, integrity-checked), apply them."""
    s = settings_of(c)
    host = host_of(c, s)
    plan_text = manage_run(host, s, "showmigrations --plan", warn=True)
    if plan_text is None or plan_text.failed:
        detail = plan_text and (plan_text.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"[{host.name}] manage.py showmigrations failed: {detail}")
    pending = plan.pending_migrations(plan_text.stdout)
    if not pending:
        host.say("no pending migrations")
        return
    host.say(f"pending migrations: {', '.join(pending)}")
    exists = host.probe(f"test -s {shlex.quote(plan.database_path(s))}", sudo=True).ok
    backup = create_backup(host, s, "pre-migrate").get("id", "") if exists else ""
    applied = manage_run(host, s, "migrate --noinput", warn=True)
    if applied is None:
        return
    if applied.failed:
        raise UserError(f"[{host.name}] migrate failed: {(applied.stderr.strip().splitlines() or ['no output'])[-1]}"
                        f"{'; the backup from before is ' + backup + ' (fab restore ' + backup + ')' if backup else ''}")
    record = {"backup": backup, "applied": pending, "at": datetime.now(timezone.utc).isoformat()}
    host.put(posixpath.join(s.app_root, ".deploy", "migrate.json"), json.dumps(record) + "\n", 0o640,
             show_diff=False)
    host.say(f"applied {len(pending)} migration(s)")


@task
def collectstatic(c):
    """Collect Django's static files into STATIC_ROOT (served by nginx)."""
    s = settings_of(c)
    host = host_of(c, s)
    result = manage_run(host, s, "collectstatic --noinput", warn=True)
    if result is None:
        return
    if result.failed:
        raise UserError(f"[{host.name}] collectstatic failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
    host.say((result.stdout.strip().splitlines() or ["collectstatic: done"])[-1])


@task(positional=["command"], help={"command": "the manage.py command line, quoted: fab manage 'createsuperuser'"})
def manage(c, command):
    """Run any manage.py command on the server, in the service's environment (user, directory, .env)."""
    s = settings_of(c)
    host = host_of(c, s)
    result = manage_run(host, s, command, hide=False, warn=True)
    if result is not None and result.failed:
        raise UserError(f"[{host.name}] manage.py {command} exited with {result.exited}")


ns = Collection(deps, migrate, collectstatic, manage)
