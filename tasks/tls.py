"""HTTPS certificates that never clobber the nginx config (guide section 11: `certbot --nginx` rewrote the site, so
the next upload of the template removed TLS).

certbot only answers the HTTP-01 challenge from a webroot (`certonly --webroot`) and never touches nginx files;
the template owns the TLS server block and renders it once the certificate exists. Renewals run certbot's own
timer; a deploy hook tests and reloads nginx so that a renewed certificate is actually served.
"""
import shlex
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from invoke import Collection, task

from .core.errors import UserError
from .core.runtime import host_of, settings_of
from .core.nginx_site import certificate_path
from .nginx import install_site, rendered_for
from .lock import locked

DEPLOY_HOOK = "/etc/letsencrypt/renewal-hooks/deploy/qms-nginx-reload.sh"
HOOK_SCRIPT = "#!/bin/sh\n# Installed by qms-deploy: serve a renewed certificate, but never reload a broken config.\n" \
              "nginx -t -q && systemctl reload nginx\n"


def server_flag(s) -> str:
    return f" --server {shlex.quote(s.tls.acme_server)}" if s.tls.acme_server else ""


def certificate_facts(host, s) -> tuple[set, datetime] | None:
    """(names, notAfter) of the live certificate, or None."""
    result = host.probe(f"openssl x509 -in {shlex.quote(certificate_path(s))} -noout -enddate -ext subjectAltName",
                        sudo=True)
    if result.failed:
        return None
    lines = result.stdout.splitlines()
    end = next(line.split("=", 1)[1] for line in lines if line.startswith("notAfter="))
    names = {part.strip()[4:] for line in lines for part in line.split(",") if part.strip().startswith("DNS:")}
    return names, parsedate_to_datetime(end.replace("GMT", "+0000")) if "GMT" in end else datetime.strptime(
        end, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=timezone.utc)


def days_left(not_after: datetime) -> int:
    return (not_after - datetime.now(timezone.utc)).days


def served_fingerprint(host, domain: str) -> str:
    return host.probe(f"echo | openssl s_client -connect 127.0.0.1:443 -servername {shlex.quote(domain)} 2>/dev/null "
                      "| openssl x509 -noout -fingerprint -sha256").stdout.strip()


def file_fingerprint(host, s) -> str:
    return host.probe(f"openssl x509 -in {shlex.quote(certificate_path(s))} -noout -fingerprint -sha256",
                      sudo=True).stdout.strip()


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
    if served_fingerprint(host, s.domains[0]) != file_fingerprint(host, s):
        raise UserError(f"[{host.name}] nginx serves another certificate than the one on disk: run nginx-reload")
    renew = host.probe(f"certbot renew --dry-run --no-random-sleep-on-renew --cert-name {shlex.quote(s.domains[0])}"
                       f"{server_flag(s)} 2>&1", sudo=True)
    if renew.failed:
        tail = [line for line in renew.stdout.splitlines() if line.strip()][-1:] or ["no output"]
        raise UserError(f"[{host.name}] certbot renew --dry-run failed: {tail[0]}")
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
        names = " ".join(f"-d {shlex.quote(d)}" for d in domains)
        host.sudo(f"certbot certonly --webroot -w {shlex.quote(s.nginx.acme_root)} --cert-name {shlex.quote(domains[0])}"
                  f" {names} --email {shlex.quote(email)} --agree-tos --non-interactive --no-random-sleep-on-renew "
                  f"--keep-until-expiring --expand{server_flag(s)}", timeout=300)
        host.report(f"certificate for {', '.join(domains)}", True, "certbot certonly --webroot")
        issued = True
    if host.dry:
        return None
    site_changed = install_site(host, s, rendered_for(host, s))   # now with the TLS block and the redirect
    if served_fingerprint(host, domains[0]) != file_fingerprint(host, s):
        raise UserError(f"[{host.name}] nginx does not serve the new certificate: run nginx-reload --force")
    host.say(f"https://{domains[0]}/ is served with the certificate")
    return "certificate issued" if issued else "HTTPS site" if site_changed else None


ns = Collection(tls)
