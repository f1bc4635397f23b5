"""The Django backend of a release (guide section 5, first deploy and daily update): dependencies with uv into the
release's own venv, migrations after a database backup, static files into the release, and any manage.py command,
all as the app's user in the service's environment. Each step takes the release it works on; the tasks work on the
served one (`current`)."""
import json
import posixpath
import re
import shlex
from datetime import datetime, timezone

from typing import Optional

from invoke import Collection, task

from .core import backend_plan as plan
from .core import checks
from .core.checks import FAIL, WARN, Finding
from .core.deploy_records import listed
from .core.errors import UserError
from . import service
from .backups import create_backup
from .lock import locked
from .core.runtime import host_of, settings_of

UV_HOME = "/opt/uv"   # where deps installs uv from PyPI when the server has none


def find_uv(host, s) -> str:
    home = host.probe(f"getent passwd {shlex.quote(s.user)} | cut -d: -f6").stdout.strip() or f"/home/{s.user}"
    candidates = " ".join(shlex.quote(p) for p in plan.uv_candidates(s, home))
    return host.probe(f"for p in {candidates}; do if [ -x \"$p\" ]; then echo \"$p\"; break; fi; done").stdout.strip()


def install_uv(host) -> str:
    """uv from PyPI into its own virtualenv (no `curl | sh` from the internet), called by absolute path."""
    made = host.sudo(f"python3 -m venv {UV_HOME} && {UV_HOME}/bin/pip install -q uv", warn=True,
                     timeout=host.long_timeout)
    if made is not None and made.failed:
        raise UserError(f"[{host.name}] could not install uv from PyPI into {UV_HOME}: "
                        f"{(made.stderr.strip().splitlines() or ['no output'])[-1]} (is python3-venv installed?)")
    return f"{UV_HOME}/bin/uv"


def manage_run(host, s, args: str, release: str = plan.CURRENT, hide: bool = True, read_only: bool = False,
               extra_env_file: str = "", writable: tuple = ()):
    """manage.py ARGS of a release on the server; a failure is one line with its last message. None under --dry,
    unless the command only reads (then it runs, so that a dry run can show what would happen)."""
    result = host.run(plan.manage_command(s, args, release, extra_env_file, writable), sudo=True, hide=hide, warn=True,
                      timeout=host.long_timeout, write=not read_only)
    if result is not None and result.failed:
        lines = result.stderr.strip().splitlines() or result.stdout.strip().splitlines() or ["no output"]
        # Django ends "Unknown command: 'x'" with a usage hint: the line before it names the problem
        last = lines[-2] if len(lines) > 1 and lines[-1].startswith("Type '") else lines[-1]
        raise UserError(f"[{host.name}] manage.py {args} failed with exit code {result.exited}: {last}")
    return result


# Django's own deploy checks, run first in the same process (one start of Django): an error stops the release.
CHECK_DEPLOY = "from django.core.management import call_command\ncall_command('check', deploy=True)\n"


def app_settings(host, s, release: str = plan.CURRENT, check_deploy: bool = False) -> list[Finding]:
    """Django's effective settings of a release in the service's environment, judged against the .env the tool
    wrote (or one failing finding when manage.py cannot run); with `check_deploy`, `check --deploy`'s errors too."""
    text = host.read(plan.env_file(s))
    env = plan.parse_env(text.decode(errors="replace")) if text is not None else {}
    env["STATIC_ROOT"] = plan.static_root(s, release)
    script = (CHECK_DEPLOY if check_deploy else "") + checks.DJANGO_SETTINGS_SCRIPT
    shown = host.probe(plan.manage_command(s, f"shell -c {shlex.quote(script)}", release), sudo=True)
    app = checks.parse_django_settings(shown.stdout)
    if app is None:
        lines = shown.stderr.strip().splitlines() or shown.stdout.strip().splitlines() or ["no output"]
        if any("SystemCheckError" in line for line in lines):
            errors = [line.strip() for line in lines if re.match(r"\s*\S+: \(\w+\.E\d+\)", line)]
            return [Finding("check --deploy", FAIL, "; ".join(errors[:3]) or lines[-1],
                            "the code so that `manage.py check --deploy` passes (it names each error), commit, "
                            "and deploy again")]
        return [Finding("app settings", FAIL, f"manage.py cannot run: {lines[-1]}", "fab logs; fab deps")]
    return checks.django_findings(app, env, list(s.domains))


def app_settings_step(host, s, release: str) -> None:
    """Before the new code migrates or serves: refuse settings that are unsafe or that point the app elsewhere than
    the tool looks (another database would be migrated and never backed up); note settings written in code."""
    if host.dry:
        return None
    findings = app_settings(host, s, release, check_deploy=True)
    for finding in findings:
        if finding.result == WARN:
            host.say(f"note: {finding.check}: {finding.saw}: {finding.fix}")
    failed = [f for f in findings if f.result == FAIL]
    if failed:
        first = failed[0]
        more = f" (and {len(failed) - 1} more: fab doctor lists them)" if len(failed) > 1 else ""
        raise UserError(f"[{host.name}] {first.check}: {first.saw}; change {first.fix}{more}")
    return None


def deps(host, s, release: str) -> Optional[str]:
    """The release's own venv: `uv sync --locked --no-dev` with a uv.lock, else `uv sync --no-dev` (pyproject.toml)
    or `uv pip install -r requirements.txt`, by uv's absolute path, bytecode compiled (the app may not write its
    venv); then check the venv has uvicorn where the unit looks for it. uv's cache makes it mostly hard links."""
    directory = plan.project_dir(s, release)
    if host.dry and release != plan.CURRENT:   # a plan made no release to install into
        host.say(f"would install the dependencies of {s.backend.python_project or s.backend.dir} into release "
                 f"{release}'s own venv")
        return None
    where = f"qms.backend.python_project ({directory})" if s.backend.python_project else \
        f"qms.backend.dir ({directory}); set qms.backend.python_project to the folder that has it"
    project = plan.parse_python_project(host.probe(plan.python_project_command(directory)).stdout)
    if not project.files:
        raise UserError(f"[{host.name}] no pyproject.toml or requirements.txt in {where}")
    if not project.declared and "requirements.txt" not in project.files:
        raise UserError(f"[{host.name}] {directory}/pyproject.toml has no [project] table (Poetry's own format?), so "
                        "uv has nothing to install: add a [project] table with name, requires-python and the "
                        "dependencies (those of [tool.poetry.dependencies], with uvicorn), then `uv lock`, commit, "
                        "and deploy again")
    if project.requires and plan.python_satisfies(project.python, project.requires) is False:
        raise UserError(f"[{host.name}] the project needs Python {project.requires} (requires-python in "
                        f"{directory}/pyproject.toml) and the server's python3 is {project.python}: install a Python "
                        "that fits on the server, or widen requires-python if the app runs on it")
    served = service.served(host, s)
    if served and release not in (served, plan.CURRENT):
        reused = host.run(plan.reuse_venv_command(s, served, release), warn=True).stdout.strip()
        if reused == "reused":
            host.run(f"cd {shlex.quote(directory)} && python3 -m compileall -q -x '/\\.venv/' . >/dev/null", warn=True)
            host.say(f"dependencies of release {release}: the same as release {served}'s, whose venv it shares "
                     "(hard links)")
            return f"venv of {served} (same dependencies)"
        host.say(f"a venv of its own: {reused.splitlines()[-1] if reused else 'not reused'}")
    uv = find_uv(host, s)
    if not uv:
        host.say("uv is not on the server: installing it from PyPI")
        uv = install_uv(host)
    result = host.run(f"cd {shlex.quote(directory)} && export UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 && "
                      f"{plan.sync_command(project, uv)} 2>&1 && python3 -m compileall -q -x '/\\.venv/' . >/dev/null",
                      warn=True, timeout=host.long_timeout)
    if result is None:
        return None
    if result.failed:
        tail = [line for line in result.stdout.splitlines() if line.strip()][-3:]
        raise UserError(f"[{host.name}] installing the dependencies failed in {directory}: "
                        f"{' | '.join(tail) or 'no output'}")
    if not host.probe(f"test -x {shlex.quote(plan.venv_bin(s, 'uvicorn', release))}").ok:
        raise UserError(f"[{host.name}] {plan.venv_bin(s, 'uvicorn', release)} is missing: add uvicorn to your dependencies "
                        "(uv add uvicorn, or a uvicorn line in requirements.txt), commit, and deploy again")
    if "uv.lock" not in project.files:
        host.say(f"note: no uv.lock in {directory}: each deploy resolves the dependencies anew; `uv lock` and a "
                 "committed uv.lock make deploys repeatable")
    summary = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith(("Installed",
                                                                                              "Uninstalled",
                                                                                              "Audited"))]
    host.say(f"dependencies of release {release} ({uv}): {'; '.join(summary) or 'nothing to do'}")
    return "; ".join(line for line in summary if not line.startswith("Audited")) or None


@task
@locked()
def deps_task(c):
    """Re-install the served release's dependencies (a repair; deploy makes each release's venv).

    Run uv for the served release's own venv again, as deploy did when it made the release: for a venv damaged by
    hand. Normal updates go through deploy, which makes a new release.
    """
    s = settings_of(c)
    host = host_of(c, s)
    return deps(host, s, plan.CURRENT)


def migrate(host, s, release: str) -> Optional[str]:
    """Release `release`'s pending migrations, after an online, integrity-checked backup of the database."""
    if host.dry and release != plan.CURRENT:   # a plan made no release: the commits it lists name the migrations
        host.say("would back up the database and apply the new release's pending migrations")
        return None
    pending = plan.pending_migrations(manage_run(host, s, "showmigrations --plan", release, read_only=True).stdout)
    if not pending:
        host.say("no pending migrations")
        return None
    host.say(f"pending migrations: {', '.join(pending)} (a migration may take long: it is given up to "
             f"{host.long_timeout} s, qms.ssh.long_timeout)")
    exists = host.probe(f"test -s {shlex.quote(plan.database_path(s))}", sudo=True).ok
    backup = create_backup(host, s, "pre-migrate").get("id", "") if exists else ""
    try:
        if manage_run(host, s, "migrate --noinput", release) is None:
            return None
    except UserError as failed:
        if backup:
            raise UserError(f"{failed.reason}; the backup from before is {backup} (fab restore {backup})") from None
        raise
    record = {"backup": backup, "applied": pending, "at": datetime.now(timezone.utc).isoformat()}
    host.put(posixpath.join(s.app_root, ".deploy", "migrate.json"), json.dumps(record) + "\n", 0o640,
             show_diff=False)
    host.say(f"applied {len(pending)} migration(s)")
    return listed(pending, "migrations applied") + (f", after backup {backup}" if backup else "")


def last_migration(host, s) -> dict:
    text = host.read(posixpath.join(s.app_root, ".deploy", "migrate.json")) or b"{}"
    try:
        return json.loads(text)
    except ValueError:
        return {}


def migrate_step(host, s, rid: str, outcome) -> Optional[str]:
    """migrate, and the backup it took before, for the history (rollback --restore-db finds it there)."""
    change = migrate(host, s, rid)
    if change:
        outcome.backup = last_migration(host, s).get("backup", "")
    return change


@task(name="migrate")
@locked()
def migrate_task(c):
    """Back up the database, then apply pending migrations.

    Show the served release's pending migrations, back up the database (online, integrity-checked), apply them.
    """
    s = settings_of(c)
    host = host_of(c, s)
    return migrate(host, s, plan.CURRENT)


def collectstatic(host, s, release: str) -> Optional[str]:
    """Django's static files into the release (served by nginx). The app's user writes them; the deploy user owns
    them afterwards, so the running app cannot change what nginx serves."""
    if host.dry and release != plan.CURRENT:
        host.say(f"would collect the static files into release {release}")
        return None
    static, owner = shlex.quote(plan.static_root(s, release)), shlex.quote(s.user)
    host.sudo(f"install -d -m 755 -o {shlex.quote(s.backend.app_user)} {static}")
    result = manage_run(host, s, "collectstatic --noinput", release, writable=(plan.static_root(s, release),))
    host.sudo(f"chown -R --no-dereference {owner}: {static} && chmod -R u=rwX,go=rX {static}")
    if result is None:
        return None
    last = (result.stdout.strip().splitlines() or ["collectstatic: done"])[-1]
    host.say(last)
    return last


@task(name="collectstatic")
@locked()
def collectstatic_task(c):
    """Collect the served release's static files again (a repair; deploy collects into each release).

    Run collectstatic for the served release into its own STATIC_ROOT, as deploy did when it made the release.
    """
    s = settings_of(c)
    host = host_of(c, s)
    return collectstatic(host, s, plan.CURRENT)


@task(positional=["command"], help={"command": "the manage.py command line, quoted: fab manage 'createsuperuser'"})
@locked()
def manage(c, command):
    """Run a manage.py command in the service's environment.

    Run any manage.py command on the server, in the service's environment (user, directory, .env).
    """
    s = settings_of(c)
    host = host_of(c, s)
    manage_run(host, s, command, hide=False)


ns = Collection(migrate_task, collectstatic_task, manage)
ns.add_task(deps_task, name="deps")
