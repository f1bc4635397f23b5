"""Smoke checks: follow each key page's redirects by hand, so a loop (the guide's ERR_TOO_MANY_REDIRECTS, section 8)
is reported with its chain instead of a bare failure. Pure: `fetch(url) -> (status, location)` is passed in."""
from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional
from urllib.parse import urljoin, urlsplit

REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class Hop:
    url: str
    status: int
    location: str = ""


@dataclass(frozen=True)
class PageResult:
    path: str
    chain: tuple
    problem: Optional[str]

    @property
    def status(self) -> int:
        return self.chain[-1].status if self.chain else 0

    def describe_chain(self) -> str:
        return " -> ".join(f"{hop.url} ({hop.status})" for hop in self.chain)


def follow(fetch: Callable[[str], tuple[int, str]], url: str, own_hosts: set, limit: int = 10) -> PageResult:
    """Fetch `url`, following redirects that stay on our hosts, until an answer, a loop or `limit` hops."""
    chain: list[Hop] = []
    seen = set()
    path = urlsplit(url).path
    while True:
        status, location = fetch(url)
        chain.append(Hop(url, status, location))
        if status not in REDIRECTS or not location:
            break
        target = urljoin(url, location)
        if urlsplit(target).hostname not in own_hosts:
            break   # leaving the site: not ours to judge
        seen.add(url)
        if target in seen:   # show where it comes round again
            again = next(hop for hop in chain if hop.url == target)
            return PageResult(path, tuple(chain) + (again,), "redirect loop")
        if len(chain) > limit:
            return PageResult(path, tuple(chain), f"more than {limit} redirects")
        url = target
    if status == 0:
        return PageResult(path, tuple(chain), "no answer")
    if status >= 400:
        return PageResult(path, tuple(chain), f"answers {status}")
    return PageResult(path, tuple(chain), None)


def cors_problem(response_headers: str, origin: str) -> Optional[str]:
    """What is wrong with the answer to a CORS preflight sent from `origin` (curl -D - output), or None."""
    allowed = [line.split(":", 1)[1].strip() for line in response_headers.splitlines()
               if line.lower().startswith("access-control-allow-origin:")]
    if origin in allowed or "*" in allowed:
        return None
    return (f"a CORS preflight from {origin} is refused (Access-Control-Allow-Origin: "
            f"{allowed[0] if allowed else 'missing'}): its domain must be in qms.domains, then run env and restart")


class Page(NamedTuple):
    path: str
    by_backend: bool
    setting: str     # the key that makes the smoke check visit it: a failure names it


def pages(s) -> list[Page]:
    """Every page the smoke check visits; the API health endpoint last (the CORS preflight goes to it)."""
    return ([Page(p, False, "qms.smoke.pages") for p in s.smoke.pages]
            + [Page(s.backend.admin_prefix, True, "qms.backend.admin_prefix"),
               Page(health_url(s), True, "qms.smoke.health_path")])


def health_url(s) -> str:
    return posixpath.join(s.backend.api_prefix, s.smoke.health_path)
