"""The nginx site: lint it locally, install it safely (guide section 3: nginx -t failures; section 8: a proxied
prefix shadowing a page; section 11: the template owns the TLS blocks, certbot never edits the file).

`nginx-reload` shows the diff, installs the file, runs `nginx -t` (warnings fail), puts the previous file back when
the test fails, reloads, and checks that nginx really runs the new configuration: new worker processes, and the
site answering for its domain.
"""
import posixpath
import secrets
import shlex
import time

from invoke import Collection, task

from .core import bundle, nginx_site
from .core.errors import UserError
from .core.nginx_site import (nginx_binary, nginx_test, lint, parse_nginx_version, render_site,
                              route_collisions)
from .core.runtime import host_of, settings_of
from .smoke import smoke_check
from .lock import locked, read_only

NGINX_PROBLEM = ("[warn]", "[emerg]", "[crit]", "[alert]")


def site_paths(s) -> tuple[str, str]:
    return f"/etc/nginx/sites-available/{s.nginx.site}", f"/etc/nginx/sites-enabled/{s.nginx.site}"


def has_certificate(host, s) -> bool:
    return host.probe(nginx_site.certificate_command(s), sudo=True).ok


def rendered_for(host, s) -> str:
    """The site as this server needs it: its nginx version, TLS only once the certificate is there."""
    version = parse_nginx_version(host.probe("nginx -v 2>&1", sudo=True).stdout)
    if version is None:
        raise UserError(f"[{host.name}] nginx is not installed: run setup (or apt-get install nginx)")
    text = render_site(s, has_certificate(host, s), version)
    problems = lint(text)
    if problems:
        raise UserError(f"the rendered nginx site fails lint: {problems[0]}: fix nginx/site.conf.j2 or the settings")
    return text


def install_site(host, s, text: str, force: bool = False) -> bool:
    """Install `text` as the site, test it, roll back on failure, reload and confirm. Returns whether it changed."""
    path, enabled = site_paths(s)
    host.ensure_dir(s.nginx.acme_root, 0o755, "root")
    old = host.read(path)
    linked = host.probe(f"readlink {shlex.quote(enabled)}").stdout.strip() == path
    if old == text.encode() and linked and not force:
        host.report(path, False, "the server's file is the rendered one")
        return False
    host.put(path, text, 0o644, "root", show_diff=True)
    if not linked:
        host.sudo(f"ln -sfn {shlex.quote(path)} {shlex.quote(enabled)}")
    if host.dry:
        return True
    test = host.probe("nginx -t 2>&1", sudo=True)
    if test.failed or any(tag in test.stdout for tag in NGINX_PROBLEM):
        restore(host, path, enabled, old, linked)
        reason = next((line for line in test.stdout.splitlines() if any(t in line for t in NGINX_PROBLEM)),
                      test.stdout.strip().splitlines()[-1] if test.stdout.strip() else "no output")
        raise UserError(f"[{host.name}] nginx -t rejected the new site ({reason.strip()}); the previous file is "
                        "back and nginx keeps serving it")
    reload_and_confirm(host, s)
    return True


def restore(host, path: str, enabled: str, old, was_linked: bool) -> None:
    if old is None:
        host.sudo(f"rm -f -- {shlex.quote(path)} {shlex.quote(enabled)}")
        return
    host.put(path, old, 0o644, "root", show_diff=False)
    if not was_linked:
        host.sudo(f"rm -f -- {shlex.quote(enabled)}")


def nginx_workers(host) -> set[str]:
    return set(host.probe("pgrep -P \"$(cat /run/nginx.pid 2>/dev/null || echo 0)\" 2>/dev/null", sudo=True)
               .stdout.split())


def reload_and_confirm(host, s, timeout: float = 10.0) -> None:
    """Reload (start when stopped) and prove it took: a reload nginx cannot apply keeps the old workers."""
    before = nginx_workers(host)
    host.sudo("systemctl reload nginx" if before else "systemctl start nginx")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = nginx_workers(host)
        if now and not now <= before:
            break
        time.sleep(0.2)
    else:
        tail = host.probe("tail -n 3 /var/log/nginx/error.log", sudo=True).stdout.strip().splitlines()
        raise UserError(f"[{host.name}] nginx did not load the new configuration: {tail[-1] if tail else 'no log'}")
    confirm_site_answers(host, s)


def answers_challenge(host, s, domain: str, through_dns: bool = False, tries: int = 25) -> bool:
    """Whether a one-off file put in the ACME webroot comes back for `domain`: from nginx on 127.0.0.1 (the site is
    loaded), or through DNS and the network as Let's Encrypt will fetch it (the domain reaches this server)."""
    token = f"qms-probe-{secrets.token_hex(8)}"
    probe = posixpath.join(s.nginx.acme_root, ".well-known", "acme-challenge", token)
    path = f"/.well-known/acme-challenge/{token}"
    fetch = (f"curl -s --max-time 10 http://{domain}{path}" if through_dns
             else f"curl -s --noproxy '*' -H 'Host: {domain}' http://127.0.0.1{path}")
    host.sudo(f"install -d -m 0755 {shlex.quote(posixpath.dirname(probe))} && echo {token} > {shlex.quote(probe)}")
    try:
        for _ in range(tries):
            if host.probe(fetch).stdout.strip() == token:
                return True
            time.sleep(0.2)
        return False
    finally:
        host.sudo(f"rm -f -- {shlex.quote(probe)}")


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
