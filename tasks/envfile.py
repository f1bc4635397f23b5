"""The server's .env (guide section 6: CORS and CSRF origins that lacked the domain): rendered from the settings
and the local secrets file, mode 0600, never printed."""
from invoke import Collection, task

from .core import backend_plan as plan
from .core.deploy_records import listed
from .core.runtime import host_of, settings_of
from .lock import locked


@task(help={"diff": "only show which keys differ from the server's .env (values never shown); change nothing"})
@locked(read_only_with="diff")
def env(c, diff=False):
    """Write the server's .env (0600) from settings and secrets.

    Write the server's .env (mode 0600) from the settings and the secrets file (every key but the tool's own:
    the backup AWS keys and DJANGO_SUPERUSER_PASSWORD stay here unless qms.backend.secret_env lists them); origins
    follow the domains.
    """
    s = settings_of(c)
    return write_env(host_of(c, s), s, diff)


def write_env(host, s, diff: bool = False):
    """The server's shared .env, written only when it differs; what changed by key name."""
    text = plan.render_env(s)
    changes = plan.env_changes((host.read(plan.env_file(s)) or b"").decode(errors="replace"), text)
    for key, change in changes:
        host.say(f"{change:8} {key}")
    if diff:
        host.say(f"{plan.env_file(s)}: {len(changes)} key(s) differ" if changes else f"{plan.env_file(s)}: same keys "
                 "and values as the settings")
        return None
    # no textual diff: it would show values; the key list above says what changes
    changed = host.put(plan.env_file(s), text, 0o600, s.user, show_diff=False)
    host.say(f"{plan.env_file(s)} {'written' if changed else 'unchanged'} ({len(text.splitlines()) - 1} keys)"
             f"{': the next release reads it (or fab restart)' if changed else ''}")
    return listed([key for key, _ in changes], ".env keys") if changes else ".env mode" if changed else None


ns = Collection(env)
