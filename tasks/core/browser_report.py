"""What a page did in the browser, judged (guide §6, §7, checklist 7: "F12, Network tab: CORS errors? does the API
URL point at the domain, not 127.0.0.1?"). Pure: a page's requests and console errors in, table rows out."""
from __future__ import annotations

from typing import Optional
from urllib.parse import urlsplit

LOCAL_HOSTS = {"localhost", "127.0.0.1", "0.0.0.0", "::1", "[::1]"}


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def request_problem(url: str, status: Optional[int], error: str, cors: str, site_origins: set,
                    api_origin: str) -> str:
    """What is wrong with one request, or ''."""
    host = (urlsplit(url).hostname or "").lower()
    if urlsplit(url).scheme in ("data", "blob", "about"):
        return ""
    if host in LOCAL_HOSTS:
        return (f"calls {host} from the visitor's browser: the bundle was built with a local API URL "
                "(fab build, then fab upload)")
    if cors:
        return f"CORS rejection ({cors}): the API does not allow this page's origin (qms.domains, then fab env and " \
               "fab restart)"
    if "TOO_MANY_REDIRECTS" in error:
        return "redirect loop (fab smoke shows the chain)"
    if error and "ERR_ABORTED" not in error:
        return f"failed: {error}"
    if status == 404 and urlsplit(url).path == "/favicon.ico":
        return ""   # the browser asks for it by itself; a site without one is not broken
    if status is not None and status >= 400:
        return f"answers {status}"
    if origin(url) not in site_origins | {api_origin}:
        return f"another origin than the site and the configured API ({api_origin})"
    return ""


def page_rows(page: str, requests: list, console_errors: list, navigation_error: str, site_origins: set,
              api_origin: str) -> list[list[str]]:
    """[page, url, status, problem] for every request the page made, then its console errors."""
    rows = []
    if navigation_error:
        problem = "redirect loop" if "TOO_MANY_REDIRECTS" in navigation_error else f"failed: {navigation_error}"
        rows.append([page, page, "-", problem])
    for r in requests:
        rows.append([page, r.url, str(r.status) if r.status is not None else "-",
                     request_problem(r.url, r.status, r.error, r.cors, site_origins, api_origin)])
    rows += [[page, "(console)", "-", f"JavaScript error: {(text or '').splitlines()[0] if text else '?'}"]
             for text in console_errors]
    return rows


def api_calls(rows: list, api_url: str) -> int:
    """How many requests went to the configured API: none means the pages never showed that the frontend reaches
    it, which is not the same as "nothing wrong"."""
    base = api_url.rstrip("/") + "/"
    return sum(1 for row in rows if row[1].startswith(base))


def no_api_note(api_url: str) -> str:
    return (f"no page called the API ({api_url}), so nothing shows the frontend reaches it: add a page that calls it "
            "without a login to qms.browser.pages (an app that calls it only after a login cannot be checked this "
            "way: fab smoke checks the API itself)")
