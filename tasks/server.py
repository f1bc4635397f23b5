"""The server itself: a read-only status, the app's own user, and the directory layout every later step relies on
(DESIGN.md, "Server layout")."""
import posixpath
import shlex

from invoke import Collection, task
from .core.console import print_table
from rich.table import Table

from .core import backend_plan as plan
from .core import clone, facts
from .core.runtime import host_of, settings_of

# Paths the tool writes inside the app's git clone; kept out of `git status` (with what the server generates there
# and the live database) so a dirty-tree check sees only real edits on the server.
TOOL_PATHS = ("/.deploy/", "/backups/", "/releases/", "/current", "/shared/", "/{frontend}/{out}")


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


@task
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
def prepare(c):
    """Create the server's directory layout with safe modes.

    Create the app's system user and the server's directory layout (app root, releases, shared database and media,
    .deploy, backups) with safe modes; idempotent.
    """
    s = settings_of(c)
    host = host_of(c, s)
    made = app_user_step(host, s)
    changed = [bool(made)] + [host.ensure_dir(path, mode, owner) for path, mode, owner in layout(s)] \
        + exclude_tool_paths(host, s)
    host.say("would change the server" if host.dry and any(changed)
             else "layout changed" if any(changed) else "layout already in place: nothing changed")
    return "directory layout" if any(changed) else None


ns = Collection(status, prepare)
