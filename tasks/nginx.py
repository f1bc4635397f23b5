"""The nginx site: lint it locally, install it safely (guide section 3: nginx -t failures; section 8: a proxied
prefix shadowing a page; section 11: the template owns the TLS blocks, certbot never edits the file).

`nginx-reload` shows the diff, installs the file, runs `nginx -t` (warnings fail), puts the previous file back when
the test fails, reloads, and checks that nginx really runs the new configuration: new worker processes, and the
site answering for its domain.
"""
import secrets
import time

from invoke import Collection, task

from .core import bundle
from .core import nginx_commands as cmd
from .core.errors import UserError
from .core.nginx_site import nginx_binary, nginx_test, lint, render_site, route_collisions
from .core.runtime import host_of, settings_of
from .smoke import smoke_check
from .lock import locked, read_only


def has_certificate(host, s) -> bool:
    return host.probe(cmd.certificate_command(s), sudo=True).ok


def rendered_for(host, s) -> str:
    """The site as this server needs it: its nginx version, TLS only once the certificate is there."""
    version = cmd.parse_version(host.probe(cmd.VERSION_COMMAND, sudo=True).stdout)
    if version is None:
        raise UserError(f"[{host.name}] nginx is not installed: run setup (or apt-get install nginx)")
    text = render_site(s, has_certificate(host, s), version)
    problems = lint(text)
    if problems:
        raise UserError(f"the rendered nginx site fails lint: {problems[0]}: fix nginx/site.conf.j2 or the settings")
    return text


def install_site(host, s, text: str, force: bool = False) -> bool:
    """Install `text` as the site, test it, roll back on failure, reload and confirm. Returns whether it changed."""
    path, enabled = cmd.site_paths(s.nginx.site)
    host.ensure_dir(s.nginx.acme_root, 0o755, "root")
    old = host.read(path)
    linked = cmd.parse_link(host.probe(cmd.link_command(enabled)).stdout, path)
    if old == text.encode() and linked and not force:
        host.report(path, False, "the server's file is the rendered one")
        return False
    host.put(path, text, 0o644, "root", show_diff=True)
    if not linked:
        host.sudo(cmd.enable_command(path, enabled))
    if host.dry:
        return True
    test = host.probe(cmd.TEST_COMMAND, sudo=True)
    problem = cmd.parse_test(test.stdout, test.failed)
    if problem:
        restore(host, path, enabled, old, linked)
        raise UserError(f"[{host.name}] nginx -t rejected the new site ({problem}); the previous file is "
                        "back and nginx keeps serving it")
    reload_and_confirm(host, s)
    return True


def restore(host, path: str, enabled: str, old, was_linked: bool) -> None:
    if old is None:
        host.sudo(cmd.remove_command(path, enabled))
        return
    host.put(path, old, 0o644, "root", show_diff=False)
    if not was_linked:
        host.sudo(cmd.remove_command(enabled))


def nginx_workers(host) -> frozenset[str]:
    return cmd.parse_workers(host.probe(cmd.WORKERS_COMMAND, sudo=True).stdout)


def reload_and_confirm(host, s, timeout: float = 10.0) -> None:
    """Reload (start when stopped) and prove it took: a reload nginx cannot apply keeps the old workers."""
    before = nginx_workers(host)
    host.sudo(cmd.reload_command(running=bool(before)))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = nginx_workers(host)
        if now and not now <= before:
            break
        time.sleep(0.2)
    else:
        tail = cmd.parse_error_tail(host.probe(cmd.ERROR_TAIL_COMMAND, sudo=True).stdout)
        raise UserError(f"[{host.name}] nginx did not load the new configuration: {tail}")
    confirm_site_answers(host, s)


def answers_challenge(host, s, domain: str, through_dns: bool = False, tries: int = 25) -> bool:
    """Whether a one-off file put in the ACME webroot comes back for `domain`: from nginx on 127.0.0.1 (the site is
    loaded), or through DNS and the network as Let's Encrypt will fetch it (the domain reaches this server)."""
    token = f"qms-probe-{secrets.token_hex(8)}"
    host.sudo(cmd.put_challenge_command(s.nginx.acme_root, token))
    try:
        for _ in range(tries):
            if cmd.parse_challenge(host.probe(cmd.fetch_challenge_command(domain, token, through_dns)).stdout, token):
                return True
            time.sleep(0.2)
        return False
    finally:
        host.sudo(cmd.remove_challenge_command(s.nginx.acme_root, token))


def confirm_site_answers(host, s) -> None:
    domain = (s.domains or ["localhost"])[0]
    if not answers_challenge(host, s, domain):
        raise UserError(f"[{host.name}] nginx reloaded but does not serve the site for {domain}: check "
                        "sites-enabled for another server with the same name")
    host.say(f"nginx serves the new configuration for {domain}")


@task(help={"force": "install, test and reload even when the server already has the rendered file"})
@locked()
def nginx_reload(c, force=False):
    """Install the nginx site safely (diff, nginx -t, reload).

    Install the rendered nginx site (diff shown), test it (warnings fail, old file restored), reload, smoke-check.
    """
    s = settings_of(c)
    return reload_site(host_of(c, s), s, force)


def reload_site(host, s, force: bool = False):
    """The rendered site installed (only when it differs, unless `force`), tested, reloaded, smoke-checked."""
    changed = install_site(host, s, rendered_for(host, s), force)
    if not changed:
        host.say("nginx site unchanged: nothing to reload (--force to reload anyway)")
    if not host.dry:
        smoke_check(host, s, strict=False)
    return "nginx site reloaded" if changed else None


@task
@read_only
def nginx_lint(c):
    """Check the rendered nginx site locally (also under inv).

    Check the rendered nginx site locally: contexts, gzip_types, real nginx -t, proxied prefixes vs pages.
    """
    s = settings_of(c)
    problems = []
    for tls in ((False, True) if s.domains else (False,)):
        text = render_site(s, tls)
        label = "HTTPS site" if tls else "HTTP site"
        problems += [f"{label}: {finding}" for finding in lint(text) + nginx_test(text)]
    out = s.local_path(s.app_dir) / s.frontend.dir / s.frontend.out
    if out.is_dir():
        problems += [str(f) for f in route_collisions([s.backend.api_prefix, s.backend.admin_prefix],
                                                      bundle.export_files(out))]
    else:
        print(f"nginx-lint: no export at {out}: route collisions not checked (run build first)")
    if not nginx_binary():
        print("nginx-lint: nginx is not installed here: skipped the real `nginx -t`")
    for problem in problems:
        print(f"nginx-lint: {problem}")
    if problems:
        raise UserError(f"the nginx site has {len(problems)} problem(s), listed above")
    print("nginx-lint: ok")


ns = Collection(nginx_reload, nginx_lint)
