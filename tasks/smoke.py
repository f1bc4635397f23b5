"""Smoke check through nginx: key pages answer, without a redirect loop (guide section 8: ERR_TOO_MANY_REDIRECTS on
/admin/users/). Run on the server with curl, so it works before DNS points at the box. Pages: settings
qms.smoke.pages, the admin prefix and the API health endpoint."""
import shlex

from invoke import Collection, task

from .core.errors import UserError
from .core.runtime import host_of, settings_of
from .core.smoke import cors_problem, follow, pages
from .lock import read_only


def probe_site(host, s):
    """(each page's result, the CORS problems): the pages followed hop by hop from plain HTTP, as a browser given
    the bare name does (with TLS on, the redirect to HTTPS is followed), then a CORS preflight to the API from each
    of the site's domains (the guide's section 6), once the API answers."""
    own = set(s.domains) or {"localhost"}
    resolve = " ".join(f"--resolve {d}:80:127.0.0.1 --resolve {d}:443:127.0.0.1" for d in sorted(own))

    def fetch(url: str) -> tuple[int, str]:
        # -k: this checks routing, not the certificate (tls --check does that); the server may not trust its CA
        out = host.probe(f"curl -s -k --noproxy '*' -o /dev/null --max-time 10 {resolve} -w '%{{http_code}} %{{redirect_url}}' "
                         f"{shlex.quote(url)}").stdout.strip()
        status, _, location = out.partition(" ")
        return int(status) if status.isdigit() else 0, location

    base = f"http://{s.domains[0] if s.domains else 'localhost'}"
    results = [follow(fetch, base + page.path, own) for page in pages(s)]
    health, refused = results[-1], []   # the API health endpoint: the browser's preflight goes to the API
    for domain in s.domains if health.problem is None else ():
        origin = f"https://{domain}"
        headers = host.probe(f"curl -s -k --noproxy '*' -o /dev/null -D - --max-time 10 {resolve} -X OPTIONS "
                             f"-H {shlex.quote('Origin: ' + origin)} -H 'Access-Control-Request-Method: GET' "
                             f"{shlex.quote(health.chain[-1].url)}").stdout
        refused += [problem] if (problem := cors_problem(headers, origin)) else []
    return results, refused


def smoke_check(host, s, strict: bool) -> None:
    """Fail on a redirect loop, and when `strict` on any page that does not answer well or a refused CORS
    preflight; otherwise only note those (right after an nginx reload the app may not be deployed yet)."""
    results, refused = probe_site(host, s)
    failures, notes = [], []
    for result, page in zip(results, pages(s)):
        if result.problem is not None:
            line = f"{result.path}: {result.problem}: {result.describe_chain()} (from {page.setting})"
            (failures if strict or "redirect" in result.problem else notes).append(line)
    (failures if strict else notes).extend(refused)
    for line in notes:   # right after a reload: the app may not be in place yet, the chain's smoke step decides
        host.say(f"note (not judged until the app is in place): {line}")
    if failures:
        for line in failures:
            host.say(f"smoke: {line}")
        raise UserError(f"[{host.name}] smoke check failed: {failures[0]}")
    cors = f"; CORS preflights answered for {', '.join(s.domains)}" if results[-1].problem is None and not refused else ""
    host.say(f"smoke: {sum(r.problem is None for r in results)} of {len(results)} pages answer through nginx without "
             f"a loop{cors}")


def smoke_step(host, s) -> None:
    if not host.dry:
        smoke_check(host, s, strict=True)


@task(help={"browser": "also open the pages in headless Chromium (browser-check)"})
@read_only
def smoke(c, browser=False):
    """Check key pages through nginx: answers, loops, CORS.

    Check key pages through nginx on the server: each answers, none loops (the chain is shown), and the API answers
    a CORS preflight from each of the site's domains. --browser: also browser-check.
    """
    s = settings_of(c)
    host = host_of(c, s)
    smoke_check(host, s, strict=True)
    if browser:
        from .browser_check import browser_check   # the browser extra is optional: load it only when asked
        browser_check(host, s)


ns = Collection(smoke)
