"""The guide's last troubleshooting step, "F12, Network tab", done by a real headless Chromium (guide §6, §7): open
the site's key pages, let their scripts run, and report every request they made and what went wrong: calls to
localhost or another origin than the configured API, CORS rejections, failed or 4xx/5xx requests, JavaScript
errors, redirect loops. Uses the machine's own browser (qms.browser.path); the websocket client is the optional
`browser` extra."""
from __future__ import annotations

import socket
from pathlib import Path
from typing import Optional

from invoke import Collection, task
from rich.table import Table

from .build import api_url_of
from .lock import read_only
from .core.browser_report import api_calls, no_api_note, origin, page_rows
from .core.cdp import Browser, find_browser
from .core.console import print_table
from .core.errors import UserError
from .core.nginx_commands import certificate_command
from .core.runtime import host_of, settings_of


def resolver_rules(host, s) -> str:
    """Chromium's --host-resolver-rules that send the site's names to the server we are connected to."""
    if not s.browser.resolve_to_server:
        return ""
    address = socket.gethostbyname(host.conn.host)
    return ", ".join(f"MAP {domain} {address}" for domain in s.domains)


def browser_rows(host, s, screenshots: Optional[str] = None) -> list[list[str]]:
    """[page, request, status, problem ('' when none)] for every request of every key page."""
    domains = s.require("domains", "browser-check (the site's address)")
    browser = find_browser(s.browser.path)
    scheme = "https" if host.probe(certificate_command(s), sudo=True).ok else "http"
    site = {f"{sch}://{d}" for d in domains for sch in ("http", "https")}
    api = origin(api_url_of(s))
    folder = Path(screenshots) if screenshots else None
    if folder:
        folder.mkdir(parents=True, exist_ok=True)
    rows = []
    with Browser(browser, resolver_rules(host, s), s.browser.insecure_tls) as chromium:
        for page in s.browser.pages or s.smoke.pages:
            shot = folder / f"{page.strip('/').replace('/', '_') or 'index'}.png" if folder else None
            log = chromium.visit(f"{scheme}://{domains[0]}{page}", s.browser.timeout, shot)
            rows += page_rows(page, log.requests, log.console_errors, log.navigation_error, site, api)
    if folder:
        host.say(f"screenshots in {folder}")
    return rows


def first_problem(host, rows) -> Optional[str]:
    problems = [row for row in rows if row[3]]
    if not problems:
        return None
    page, url, _, problem = problems[0]
    return f"[{host.name}] browser-check: {len(problems)} problem(s); {page}: {url}: {problem}"


def browser_check(host, s, screenshots: Optional[str] = None) -> None:
    rows = browser_rows(host, s, screenshots)
    table = Table(title=f"{host.name}: browser-check")
    for column in ("page", "request", "status", "problem"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row[:3], row[3] or "ok")
    print_table(table)
    problem = first_problem(host, rows)
    if problem:
        raise UserError(problem)
    api = api_url_of(s)
    called = api_calls(rows, api)
    host.say(f"browser-check: {len(rows)} requests from {len(s.browser.pages or s.smoke.pages)} pages, none wrong"
             + (f", {called} to the API" if called else f"; but {no_api_note(api)}"))


@task(name="browser-check", help={"screenshot": "save a PNG of each page into this directory"})
@read_only
def browser_check_task(c, screenshot=None):
    """Open the key pages in headless Chromium; report bad requests.

    Open the site's key pages in the machine's headless Chromium and report every request: localhost or foreign
    origins, CORS rejections, failures, 4xx/5xx, JavaScript errors, redirect loops.
    """
    s = settings_of(c)
    browser_check(host_of(c, s), s, screenshot)


ns = Collection(browser_check_task)
