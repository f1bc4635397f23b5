"""The server itself: a read-only status, the app's own user, and the directory layout every later step relies on
(DESIGN.md, "Server layout")."""
import posixpath
import shlex
from typing import Optional

from invoke import Collection, task
from .core.console import print_table
from rich.table import Table

from .backups import create_backup
from .lock import locked, read_only
from .core import backend_plan as plan
from .core import clone, facts
from .core.errors import UserError
from .core.runtime import host_of, settings_of

# Paths the tool writes inside the app's git clone; kept out of `git status` (with what the server generates there
# and the live database) so a dirty-tree check sees only real edits on the server.
TOOL_PATHS = ("/.deploy/", "/backups/", "/releases/", "/current", "/shared/", "/{frontend}/{out}",
              "*.before-releases", "/.env")   # the last two: what a server from before releases has


def layout(s) -> list[tuple[str, int, str]]:
    """(path, mode, owner) of every directory the tool keeps under the app root, parents first."""
    root, app = s.app_root, s.backend.app_user
    return [
        (root, 0o755, s.user),
        (plan.releases_dir(s), 0o755, s.user),      # served by nginx, run by the app: traversable, not writable
        (plan.shared_dir(s), 0o755, s.user),
        (plan.database_dir(s), 0o700, app),         # the database and its journal: the app's user only
        (plan.media_dir(s), 0o750, app),
        (posixpath.join(root, ".deploy"), 0o750, s.user),    # lock, history
        (posixpath.join(root, "backups"), 0o700, s.user),    # database copies: the owner only
    ]


def app_user_step(host, s):
    """The system user the app runs as: no password, no login shell, no home, no sudo."""
    name = shlex.quote(s.backend.app_user)
    if host.probe(f"getent passwd {name}").ok:
        return None
    host.sudo(f"useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "
              f"{name}")
    return f"user {s.backend.app_user}"


def exclude_tool_paths(host, s) -> list[bool]:
    """Keep what the tool writes inside the clone out of `git status` (nothing to do before the clone exists)."""
    git_dir = posixpath.join(s.app_root, ".git")
    if host.stat(git_dir) is None:
        return []
    exclude = posixpath.join(git_dir, "info", "exclude")
    patterns = ([p.format(frontend=s.frontend.dir, out=s.frontend.out) for p in TOOL_PATHS]
                + clone.generated_patterns(s) + ["/" + clone.database_path(s)])
    return [host.append_line(exclude, p) for p in patterns]


def legacy_command(s) -> str:
    """What a server set up before releases has: the guide's (or this tool's earlier) database in the clone, its
    units, its .env in the app root; and whether the shared database exists already. key=value lines."""
    database = posixpath.join(s.app_root, clone.database_path(s))
    unit = f"/etc/systemd/system/{s.backend.unit}"
    checks = {"database": database, "service": f"{unit}.service", "socket": f"{unit}.socket",
              "env": posixpath.join(s.app_root, ".env"), "shared": plan.database_path(s)}
    return "; ".join(f"[ -f {shlex.quote(path)} ] && echo {key}={shlex.quote(path)}" for key, path in checks.items()) \
        + "; true"


def adopt_step(host, s, run) -> Optional[str]:
    """A server set up the guide's way, or by this tool before releases: its database backed up, its service stopped
    and its database copied to the shared place (the original stays where it was); on a failure before the switch
    the old service starts again, as it was."""
    found = facts.parse_key_values(host.probe(legacy_command(s), sudo=True).stdout)
    if "database" not in found:
        return None
    if "shared" in found:
        host.say(f"note: {found['database']} is a database from before releases; the app uses {found['shared']}")
        return None
    backup = create_backup(host, s, "pre-adopt", database=found["database"])
    units = " ".join(shlex.quote(posixpath.basename(found[k])) for k in ("socket", "service") if k in found)
    if host.dry:
        host.say(f"would stop {units or 'nothing'} and copy {found['database']} to {plan.database_path(s)}")
        return None
    if units:
        host.sudo(f"systemctl stop {units}")
        run.undo.append(lambda: host.sudo(f"systemctl start {units}", warn=True))
    target = shlex.quote(plan.database_path(s))
    app = shlex.quote(s.backend.app_user)
    copied = host.sudo(f"sqlite3 {shlex.quote(found['database'])} \".backup {plan.database_path(s)}\" && "
                       f"chown {app}:{app} {target} && chmod 600 {target} && "
                       f"sqlite3 {target} 'PRAGMA integrity_check'", warn=True)
    if copied.failed or copied.stdout.strip() != "ok":
        raise UserError(f"[{host.name}] cannot copy {found['database']} to {plan.database_path(s)}: "
                        f"{(copied.stderr.strip() or copied.stdout.strip() or 'no output').splitlines()[-1]}")
    run.undo.append(lambda: host.sudo(f"rm -f {target}", warn=True))
    host.say(f"adopted {found['database']} (backup {backup.get('id')}): the app's database is now "
             f"{plan.database_path(s)}; the old one stays as it was until the new release serves")
    return f"database from {found['database']}"


def finish_adoption(host, s) -> Optional[str]:
    """Once a release serves: the old units disabled and removed, the old .env (secrets) removed; the old database
    stays where it was, renamed so that nothing takes it for the live one."""
    found = facts.parse_key_values(host.probe(legacy_command(s), sudo=True).stdout)
    if "database" not in found or host.dry:
        return None
    units = [found[k] for k in ("socket", "service") if k in found]
    old = found["database"] + ".before-releases"
    commands = [f"mv -n {shlex.quote(found['database'])} {shlex.quote(old)}"]
    if units:
        names = " ".join(shlex.quote(posixpath.basename(u)) for u in units)
        commands.insert(0, f"systemctl disable -q --now {names}; rm -f {' '.join(map(shlex.quote, units))} && "
                           "systemctl daemon-reload")
    if "env" in found:
        commands.append(f"rm -f {shlex.quote(found['env'])}")
    host.sudo(" && ".join(commands))
    host.say(f"the layout from before releases is retired: old units removed, the old database kept as {old}")
    return "old layout retired"


@task
@read_only
def status(c):
    """Read-only overview of the server.

    Read-only overview of the server: OS, memory, disk, app clone, backend and nginx state.
    """
    s = settings_of(c)
    host = host_of(c, s)
    found = facts.parse_key_values(host.probe(facts.server_status_command(s.app_root, s.backend.unit)).stdout)
    mb = lambda key: f"{int(found.get(key) or 0) // 1024} MB"
    table = Table(title=f"{host.name} ({s.env or 'no environment'})", show_header=False)
    for key, value in (("os", found.get("os")), ("memory", f"{mb('memory_kb')} ({mb('available_kb')} available)"),
                       ("disk free", mb("disk_free_kb")), (f"app root {s.app_root}", found.get("app_root")),
                       ("clone HEAD", found.get("git_head")), ("served release", found.get("release")),
                       (f"{s.backend.unit}@<release>", found.get("backend")), ("nginx", found.get("nginx")),
                       ("uptime", f"{int(found.get('uptime_s') or 0) // 60} min")):
        table.add_row(key, value or "?")
    print_table(table)


@task
@locked()
def prepare(c):
    """Create the server's directory layout with safe modes.

    Create the app's system user and the server's directory layout (app root, releases, shared database and media,
    .deploy, backups) with safe modes; idempotent.
    """
    s = settings_of(c)
    return prepare_layout(host_of(c, s), s)


SSHD_KEEPALIVE = "/etc/ssh/sshd_config.d/60-qms-deploy.conf"
SSHD_KEEPALIVE_TEXT = ("# Written by qms-deploy: a client whose link died is noticed within 15 s (not TCP's two hours),\n"
                       "# so its commands end and its deploy lock reads as stale at once.\n"
                       "ClientAliveInterval 5\nClientAliveCountMax 3\n")


def sshd_keepalive_step(host, s) -> bool:
    """sshd asks an idle client every 5 s and drops it after 3 unanswered asks; checked with `sshd -t` before a
    reload (a rejected file is removed again)."""
    if host.stat(posixpath.dirname(SSHD_KEEPALIVE)) is None:   # an sshd without drop-ins: leave its config alone
        host.say(f"note: no {posixpath.dirname(SSHD_KEEPALIVE)}: sshd keeps its own keepalive settings")
        return False
    changed = host.put(SSHD_KEEPALIVE, SSHD_KEEPALIVE_TEXT, 0o644, "root")
    if changed and not host.dry:
        checked = host.sudo("sshd -t 2>&1", warn=True)
        if checked.failed:
            host.sudo(f"rm -f {SSHD_KEEPALIVE}")
            raise UserError(f"[{host.name}] sshd -t rejects {SSHD_KEEPALIVE}: {checked.stdout.strip()[-200:]}")
        host.sudo("systemctl try-reload-or-restart ssh.service 2>/dev/null || systemctl try-reload-or-restart "
                  "sshd.service")
    return changed


def prepare_layout(host, s):
    """The app's user, the directories and sshd's keepalive, each made only where it differs."""
    changed = [bool(app_user_step(host, s)), sshd_keepalive_step(host, s),
               *[host.ensure_dir(path, mode, owner) for path, mode, owner in layout(s)], *exclude_tool_paths(host, s)]
    host.say("would change the server" if host.dry and any(changed)
             else "layout changed" if any(changed) else "layout already in place: nothing changed")
    return "directory layout" if any(changed) else None


ns = Collection(status, prepare)
