"""The server's nginx and its certificate, as data: each remote question is a command and a pure parser of its
output (tests feed recorded output), each change a command. tasks/nginx.py and tasks/tls.py decide; the shell
strings live here. Run as root: nginx lives in /usr/sbin and /etc/letsencrypt/live is 0700."""
from __future__ import annotations

import re
import shlex
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Optional

from .nginx_site import certificate_path

VERSION_COMMAND = "nginx -v 2>&1"
TEST_COMMAND = "nginx -t 2>&1"
# the master's children: a reload that took replaces every one of them
WORKERS_COMMAND = "pgrep -P \"$(cat /run/nginx.pid 2>/dev/null || echo 0)\" 2>/dev/null"
ERROR_TAIL_COMMAND = "tail -n 3 /var/log/nginx/error.log"
RENEW_HOOK = "nginx -t -q && systemctl reload nginx"   # certbot's deploy hook: never reload a broken config

_PROBLEM = re.compile(r"\[(emerg|alert|crit|warn)\]")


def site_paths(site: str) -> tuple[str, str]:
    return f"/etc/nginx/sites-available/{site}", f"/etc/nginx/sites-enabled/{site}"


def parse_version(output: str) -> Optional[tuple[int, ...]]:
    """`nginx -v` prints `nginx version: nginx/1.22.1` (on stderr); None when the output has no version."""
    match = re.search(r"nginx/(\d+(?:\.\d+)*)", output)
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def parse_test(output: str, failed: bool) -> Optional[str]:
    """`nginx -t 2>&1`: the first problem, None when it passes. Warnings count (guide section 3: a warning hid a
    broken directive)."""
    problems = [line.split("] ", 1)[-1].strip() for line in output.splitlines() if _PROBLEM.search(line)]
    if problems:
        return problems[0]
    if failed:
        return (output.strip().splitlines() or ["failed without output"])[-1].strip()
    return None


def link_command(enabled: str) -> str:
    return f"readlink {shlex.quote(enabled)}"


def parse_link(output: str, available: str) -> bool:
    """Whether sites-enabled links to our file."""
    return output.strip() == available


def enable_command(available: str, enabled: str) -> str:
    return f"ln -sfn {shlex.quote(available)} {shlex.quote(enabled)}"


def remove_command(*paths: str) -> str:
    return "rm -f -- " + " ".join(map(shlex.quote, paths))


def parse_workers(output: str) -> frozenset[str]:
    return frozenset(output.split())


def reload_command(running: bool) -> str:
    """A reload keeps serving while the new workers start; a stopped nginx needs a start."""
    return "systemctl reload nginx" if running else "systemctl start nginx"


def parse_error_tail(output: str) -> str:
    lines = output.strip().splitlines()
    return lines[-1] if lines else "no log"


# -- a one-off file in the ACME webroot: does nginx (or the internet's way to the domain) serve it? --------------
def challenge_path(token: str) -> str:
    return f"/.well-known/acme-challenge/{token}"


def put_challenge_command(acme_root: str, token: str) -> str:
    directory = shlex.quote(acme_root.rstrip("/") + "/.well-known/acme-challenge")
    return f"install -d -m 0755 {directory} && echo {shlex.quote(token)} > {directory}/{shlex.quote(token)}"


def remove_challenge_command(acme_root: str, token: str) -> str:
    return remove_command(acme_root.rstrip("/") + challenge_path(token))


def fetch_challenge_command(domain: str, token: str, through_dns: bool) -> str:
    """From nginx on 127.0.0.1 (the site is loaded), or through DNS and the network as Let's Encrypt fetches it."""
    if through_dns:
        return f"curl -s --max-time 10 {shlex.quote(f'http://{domain}{challenge_path(token)}')}"
    return (f"curl -s --noproxy '*' -H {shlex.quote(f'Host: {domain}')} "
            f"{shlex.quote(f'http://127.0.0.1{challenge_path(token)}')}")


def parse_challenge(output: str, token: str) -> bool:
    return output.strip() == token


# -- the certificate ------------------------------------------------------------------------------------------
def certificate_command(s) -> str:
    """Succeeds when the certificate the TLS block needs is there."""
    return f"test -s {shlex.quote(certificate_path(s))}" if s.domains else "false"


def certificate_facts_command(s) -> str:
    return f"openssl x509 -in {shlex.quote(certificate_path(s))} -noout -enddate -ext subjectAltName"


def parse_certificate_facts(output: str) -> Optional[tuple[frozenset, datetime]]:
    """(names, notAfter) from `openssl x509 -enddate -ext subjectAltName`; None without a notAfter line."""
    lines = output.splitlines()
    end = next((line.split("=", 1)[1].strip() for line in lines if line.startswith("notAfter=")), None)
    if end is None:
        return None
    names = frozenset(part.strip()[4:] for line in lines for part in line.split(",")
                      if part.strip().startswith("DNS:"))
    if end.endswith("GMT"):
        return names, parsedate_to_datetime(end.replace("GMT", "+0000"))
    return names, datetime.strptime(end, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=timezone.utc)


def file_fingerprint_command(s) -> str:
    return f"openssl x509 -in {shlex.quote(certificate_path(s))} -noout -fingerprint -sha256"


def served_fingerprint_command(domain: str) -> str:
    return (f"echo | openssl s_client -connect 127.0.0.1:443 -servername {shlex.quote(domain)} 2>/dev/null "
            "| openssl x509 -noout -fingerprint -sha256")


def acme_server_flag(s) -> str:
    return f" --server {shlex.quote(s.tls.acme_server)}" if s.tls.acme_server else ""


def certonly_command(s, email: str) -> str:
    """certbot answers the challenge from the webroot and never edits nginx's files (guide section 11)."""
    names = " ".join(f"-d {shlex.quote(d)}" for d in s.domains)
    return (f"certbot certonly --webroot -w {shlex.quote(s.nginx.acme_root)} --cert-name {shlex.quote(s.domains[0])}"
            f" {names} --email {shlex.quote(email)} --agree-tos --non-interactive --no-random-sleep-on-renew "
            f"--keep-until-expiring --expand{acme_server_flag(s)}")


def renew_dry_run_command(s) -> str:
    return (f"certbot renew --dry-run --no-random-sleep-on-renew --cert-name {shlex.quote(s.domains[0])}"
            f"{acme_server_flag(s)} 2>&1")


def parse_last_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"
