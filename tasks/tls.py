"""HTTPS certificates that never clobber the nginx config (guide section 11: `certbot --nginx` rewrote the site, so
the next upload of the template removed TLS).

certbot only answers the HTTP-01 challenge from a webroot (`certonly --webroot`) and never touches nginx files;
the template owns the TLS server block and renders it once the certificate exists. Renewals run certbot's own
timer; a deploy hook tests and reloads nginx so that a renewed certificate is actually served.
"""
from datetime import datetime, timezone

from invoke import Collection, task

from .core import nginx_commands as cmd
from .core.errors import UserError
from .core.runtime import host_of, settings_of
from .nginx import install_site, rendered_for
from .lock import locked

DEPLOY_HOOK = "/etc/letsencrypt/renewal-hooks/deploy/qms-nginx-reload.sh"
HOOK_SCRIPT = ("#!/bin/sh\n# Installed by qms-deploy: serve a renewed certificate, but never reload a broken config.\n"
               f"{cmd.RENEW_HOOK}\n")


def certificate_facts(host, s) -> tuple[frozenset, datetime] | None:
    """(names, notAfter) of the live certificate, or None."""
    return cmd.parse_certificate_facts(host.probe(cmd.certificate_facts_command(s), sudo=True).stdout)


def days_left(not_after: datetime) -> int:
    return (not_after - datetime.now(timezone.utc)).days


def serves_file_certificate(host, s) -> bool:
    """Whether nginx serves the certificate on disk (not an older one it loaded before a renewal)."""
    served = host.probe(cmd.served_fingerprint_command(s.domains[0])).stdout.strip()
    return served != "" and served == host.probe(cmd.file_fingerprint_command(s), sudo=True).stdout.strip()


def check_certificate(host, s) -> None:
    facts = certificate_facts(host, s)
    if facts is None:
        raise UserError(f"[{host.name}] no certificate for {s.domains[0]}: run tls")
    names, not_after = facts
    left = days_left(not_after)
    host.say(f"certificate for {', '.join(sorted(names))} expires {not_after:%Y-%m-%d} ({left} days)")
    missing = set(s.domains) - names
    if missing:
        raise UserError(f"[{host.name}] the certificate does not cover {', '.join(sorted(missing))}: run tls")
    if not serves_file_certificate(host, s):
        raise UserError(f"[{host.name}] nginx serves another certificate than the one on disk: run nginx-reload")
    renew = host.probe(cmd.renew_dry_run_command(s), sudo=True)
    if renew.failed:
        raise UserError(f"[{host.name}] certbot renew --dry-run failed: {cmd.parse_last_line(renew.stdout)}")
    host.say("certbot renew --dry-run: ok")
    if left < s.tls.renew_before_days:
        raise UserError(f"[{host.name}] the certificate expires in {left} days (renewal should have happened at "
                        f"{s.tls.renew_before_days}): check `systemctl status certbot.timer` and the certbot log")


@task(help={"check": "only report: days until expiry, served certificate, and `certbot renew --dry-run`"})
@locked(read_only_with="check")
def tls(c, check=False):
    """Get the certificate (certonly --webroot) and serve HTTPS.

    Get a Let's Encrypt certificate with certonly --webroot (nginx config untouched), then serve HTTPS.
    """
    s = settings_of(c)
    s.require("domains", "tls")
    host = host_of(c, s)
    if check:
        check_certificate(host, s)
        return None
    return obtain(host, s)


def obtain(host, s):
    """The certificate (only when missing, short of a domain or expiring), then the site with its TLS block."""
    domains = s.require("domains", "tls")
    email = s.require("tls.email", "tls (Let's Encrypt's expiry notices)")
    install_site(host, s, rendered_for(host, s))   # the ACME webroot must answer before certbot asks for it
    host.ensure_dir("/etc/letsencrypt/renewal-hooks/deploy", 0o755, "root")
    host.put(DEPLOY_HOOK, HOOK_SCRIPT, 0o755, "root")
    issued = False
    facts = certificate_facts(host, s)
    if facts and set(domains) <= facts[0] and days_left(facts[1]) >= s.tls.renew_before_days:
        host.report(f"certificate for {', '.join(domains)}", False, f"{days_left(facts[1])} days left")
    else:
        host.sudo(cmd.certonly_command(s, email), timeout=host.long_timeout)
        host.report(f"certificate for {', '.join(domains)}", True, "certbot certonly --webroot")
        issued = True
    if host.dry:
        return None
    site_changed = install_site(host, s, rendered_for(host, s))   # now with the TLS block and the redirect
    if not serves_file_certificate(host, s):
        raise UserError(f"[{host.name}] nginx does not serve the new certificate: run nginx-reload --force")
    host.say(f"https://{domains[0]}/ is served with the certificate")
    return "certificate issued" if issued else "HTTPS site" if site_changed else None


ns = Collection(tls)
