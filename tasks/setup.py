"""The first deploy (guide: twelve manual steps on a fresh server) as one idempotent task.

From a fresh Ubuntu/Debian server to the app served over HTTPS: system packages, the directory layout, the clone,
the server .env, dependencies, migrations, static files, a superuser and seed data (once), the systemd units,
the frontend release, nginx, a certificate, permissions, a (re)start and the smoke checks. Run again, it changes
nothing and says so.
"""
from __future__ import annotations

import posixpath
import shlex
from typing import Optional

from invoke import Collection, task

from datetime import datetime, timezone

from . import backend, nginx, perms, release, server, tls
from .app_check import app_check_step
from .build import build_once
from .chain import Run, run_chain
from .preflight import local_commit, required_secrets
from .release import put_back_after_failure, release_steps, retire_step, server_state
from .smoke import smoke_step
from .core import facts
from .core.releases import release_id
from .core.errors import UserError
from .core.runtime import host_of, settings_of
from .lock import own_lock, take


def packages_step(host, s) -> Optional[str]:
    wanted = list(s.setup.packages)
    installed = facts.parse_installed_packages(host.probe(facts.installed_packages_command(wanted)).stdout)
    missing = [p for p in wanted if p not in installed]
    if not missing:
        host.say(f"system packages present: {', '.join(wanted)}")
        return None
    host.say(f"installing {', '.join(missing)}")
    result = host.sudo("export DEBIAN_FRONTEND=noninteractive && apt-get update -q && apt-get install -y -q "
                       f"--no-install-recommends {' '.join(shlex.quote(p) for p in missing)}", warn=True,
                       timeout=host.long_timeout)
    if result is not None and result.failed:
        tail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise UserError(f"[{host.name}] apt-get could not install {', '.join(missing)}: {tail[0]}")
    return f"installed {', '.join(missing)}"


def superuser_step(host, s, rid: str) -> Optional[str]:
    """The Django superuser, once; its password comes from the secrets file and never shows on a command line."""
    name = s.setup.superuser
    if not name:
        return None
    code = f"from django.contrib.auth import get_user_model as m; print(m().objects.filter(username={name!r}).exists())"
    exists = backend.manage_run(host, s, f"shell -c {shlex.quote(code)}", rid, read_only=True)
    if exists.stdout.strip().endswith("True"):
        host.say(f"superuser {name} exists")
        return None
    password = s.secrets["DJANGO_SUPERUSER_PASSWORD"]   # required_secrets checked it before anything was sent
    if host.dry:
        host.say(f"would create the superuser {name}")
        return None
    secret_env = host.run("umask 077 && mktemp /tmp/qms-superuser.XXXXXXXX").stdout.strip()
    escaped = password.replace("\\", "\\\\").replace('"', '\\"')
    try:
        host.put(secret_env, f'DJANGO_SUPERUSER_PASSWORD="{escaped}"\n', 0o600, "root", show_diff=False, quiet=True)
        email = f" --email {shlex.quote(s.setup.superuser_email)}" if s.setup.superuser_email else " --email ''"
        backend.manage_run(host, s, f"createsuperuser --noinput --username {shlex.quote(name)}{email}", rid,
                           extra_env_file=secret_env)
    finally:
        host.sudo(f"rm -f -- {shlex.quote(secret_env)}")
    return f"superuser {name}"


def seed_step(host, s, rid: str) -> Optional[str]:
    """The seed command, on the first setup only (a marker in .deploy remembers it ran)."""
    if not s.setup.seed_command:
        return None
    marker = posixpath.join(s.app_root, ".deploy", "seeded")
    if host.stat(marker) is not None:
        host.say(f"{s.setup.seed_command} ran on an earlier setup")
        return None
    try:
        result = backend.manage_run(host, s, s.setup.seed_command, rid)
    except UserError as e:
        raise UserError(f"{e} (the seed command is qms.setup.seed_command; '' runs none)") from None
    if result is None:
        return None
    host.put(marker, s.setup.seed_command + "\n", 0o640, show_diff=False, quiet=True)
    return (result.stdout.strip().splitlines() or [s.setup.seed_command])[-1]


def tls_step(host, s) -> Optional[str]:
    """A certificate where it can work: an email for Let's Encrypt, and every domain reaching this server."""
    if not s.domains or not s.tls.email:
        host.say("no certificate: set qms.domains and qms.tls.email, then run tls")
        return None
    if s.tls.reachability_check and not host.dry:
        away = [d for d in s.domains if not nginx.answers_challenge(host, s, d, through_dns=True, tries=2)]
        if away:
            host.say(f"no certificate yet: {', '.join(away)} does not reach this server over HTTP (DNS not pointed "
                     "here yet?); run tls once it does")
            return None
    return tls.obtain(host, s)


@task(help={"push": "push HEAD to the remote the server pulls from first (qms.git_remote)"})
@own_lock
def setup(c, push=False):
    """First deploy of a fresh server, end to end; idempotent.

    app-check (local), then from a fresh server to the app over HTTPS: packages, the app's user and the layout, a
    first release (clone, .env, deps, the app's settings, migrate, collectstatic, superuser, seed data, systemd,
    frontend) started and checked, switched to, nginx, certificate, permissions, smoke checks.
    """
    s = settings_of(c)
    required_secrets(s, superuser=True)
    app_check_step(s)
    sha = local_commit(s, push, c.config.run.dry)
    host = host_of(c, s)
    run = Run(host, s, "setup", lambda: server_state(host, s))
    run.step("packages", packages_step, host, s)
    run.step("prepare", server.prepare_layout, host, s)
    if host.stat(posixpath.join(s.app_root, ".deploy")) is not None:
        run.lock = take(host, s, "setup")
    before = run.outcome.before = server_state(host, s)
    rid = release_id(datetime.now(timezone.utc), sha, False)
    def steps():   # decided as they go: after the build, the served release may hold this commit and export already
        # fix-perms first: the app's user and nginx must enter the app root (a home directory of 750, as on Ubuntu)
        yield from [("fix-perms", perms.fix, host, s), ("build", build_once, s, sha)]
        served = release.serving(host, s, sha)
        for step in release_steps(host, s, sha, rid, run, served):
            if step[0] == "migrate":   # a server from before releases: its database moves to the shared place
                yield ("adopt", server.adopt_step, host, s, run)
            if step[0] == "start":   # the first superuser and the seed data, with the new release's code
                yield from [("superuser", superuser_step, host, s, rid), ("seed", seed_step, host, s, rid)]
            yield step
        yield from [("nginx-reload", nginx.reload_site, host, s), ("tls", tls_step, host, s),
                    ("smoke", smoke_step, host, s), ("retire", retire_step, host, s, before),
                    ("retire-old-layout", server.finish_adoption, host, s)]
    run_chain(run, steps(), switch_at="switch", discard=lambda: release.discard_unserved(host, s, run, rid, before),
              put_back=lambda: put_back_after_failure(host, s, before, rid))


ns = Collection(setup)
