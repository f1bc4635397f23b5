"""The server's .env (guide section 6: CORS and CSRF origins that lacked the domain): rendered from the settings
and the local secrets file, mode 0600, never printed."""
from invoke import Collection, task

from .core import backend_plan as plan
from .core.runtime import host_of, settings_of


@task
def env(c):
    """Write the server's .env (0600) from settings and secrets.

    Write the server's .env (mode 0600) from the settings and the secrets file; origins follow the domains.
    """
    s = settings_of(c)
    text = plan.render_env(s)
    host = host_of(c, s)
    # show_diff: the diff is printed through the secrets mask, but say nothing of values at all
    changed = host.put(plan.env_file(s), text, 0o600, s.user, show_diff=False)
    host.say(f"{plan.env_file(s)} {'written' if changed else 'unchanged'} ({len(text.splitlines()) - 1} keys)"
             f"{': run restart so the backend reads it' if changed else ''}")


ns = Collection(env)
