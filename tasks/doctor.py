"""The guide's troubleshooting checklist as one read-only task: service and logs, ports, `nginx -t`, file modes,
the .env, the API URL in the bundle, CORS, redirect loops, the certificate, resources, git and deploy state, and
the local repository's secrets. Each check says what it saw and what fixes it (guide: troubleshooting, §3-§11)."""
from __future__ import annotations

import json
import socket

from invoke import Collection, task

from . import backend, build, git, lock, perms, secrets_check, service, tls
from .core import backend_plan as plan
from .core import bundle, checks, clone, facts, nginx_commands
from .core.browser_report import api_calls, no_api_note
from .core import deploy_records as records
from .core.checks import FAIL, OK, WARN, Finding
from .core.console import print_findings
from .core.errors import UserError
from .core.runtime import host_of, settings_of
from .history import read_history
from .core.smoke import health_url, pages
from .smoke import probe_site
from .lock import read_only


def software_checks(host, s) -> list[Finding]:
    """What the server runs: the OS and the versions of the programs the tool drives (a first line when a report
    is compared with another server's). sudo: nginx lives in /usr/sbin, off a plain user's PATH on Debian."""
    found = facts.parse_software(host.probe(facts.SOFTWARE_COMMAND, sudo=True).stdout)
    return [Finding("server software", OK, found.describe())]


def backend_checks(host, s) -> list[Finding]:
    served = service.served(host, s)
    if not served:
        return [Finding("served release", FAIL, f"{plan.release_dir(s)} is missing: no release is served", "fab setup")]
    unit = plan.instance(s, served)
    return (checks.parse_unit(host.probe(checks.unit_command(unit), sudo=True).stdout, unit)
            + [checks.exposure_finding(host.probe(checks.exposure_command(unit)).stdout, unit, s.backend.exposure_max),
               checks.parse_active(host.probe(checks.active_command("nginx")).stdout, "nginx",
                                   "sudo systemctl start nginx (fab logs --which nginx says why it stopped)")])


def tcp_answers(address: str, ports: list[int], timeout: float = 3.0) -> dict[int, str]:
    """port -> '' when a TCP connect from this machine gets through, else what happened (a cloud firewall drops the
    packets: a timeout)."""
    answers = {}
    for port in ports:
        try:
            with socket.create_connection((address, port), timeout=timeout):
                answers[port] = ""
        except TimeoutError:
            answers[port] = f"gives no answer in {timeout:g} s"
        except OSError as e:
            answers[port] = f"fails: {e.strerror or e}"
    return answers


def port_checks(host, s) -> list[Finding]:
    """What listens on the server, what ufw lets in, and what answers from here: a web port that listens but does not
    answer this machine is behind a firewall, ufw's or the cloud's (which only its console shows)."""
    tls_expected = bool(s.tls.email)
    listeners = checks.parse_listeners(host.probe(checks.LISTEN_COMMAND, sudo=True).stdout)
    web = checks.WEB_PORTS if tls_expected or 443 in listeners else checks.WEB_PORTS[:1]
    ufw = checks.parse_ufw(host.probe(checks.UFW_COMMAND, sudo=True).stdout)
    address = host.conn.host   # the address ssh reaches, after the ssh config's HostName
    answers = tcp_answers(address, [port for port in web if port in listeners])
    return (checks.port_findings(listeners, tls_expected) + [checks.ufw_finding(ufw, web)]
            + checks.reach_findings(address, answers, listeners, checks.ufw_blocked(ufw, web)))


def nginx_checks(host, s) -> list[Finding]:
    tested = host.probe(nginx_commands.TEST_COMMAND, sudo=True)
    return [checks.nginx_test_finding(nginx_commands.parse_test(tested.stdout, tested.failed))]


def permission_checks(host, s) -> list[Finding]:
    trees, blocked, wrong, escaping = perms.inspect(host, s)
    if escaping:
        tree, real = next(iter(escaping.items()))
        return [Finding("nginx can read the site", FAIL, f"{tree} leads to {real}, outside the releases",
                        "fab deploy (a whole release), or fab rollback")]
    if blocked:
        found = host.stat(blocked[0])
        return [checks.untraversable_finding(s.nginx.user, blocked[0], f"{found.mode:o}" if found else "?")]
    if wrong:
        return [Finding("nginx can read the site", FAIL, f"{len(wrong)} entries with other modes than 755/644, e.g. "
                                                         f"{wrong[0][2:]}", "fab fix-perms")]
    problems = perms.verify(host, s) if trees[perms.served_trees(s)[0]] else ["no frontend is served"]
    if problems:
        return [Finding("nginx can read the site", FAIL, problems[0], "fab fix-perms (or fab upload)")]
    return [Finding("nginx can read the site", OK, f"{s.nginx.user} reads and nginx serves index.html")]


def env_checks(host, s) -> list[Finding]:
    path = plan.env_file(s)
    found = host.stat(path)
    mode = f"{found.mode:o}" if found else None
    text = host.read(path)
    values = plan.parse_env(text.decode(errors="replace")) if text is not None else None
    return checks.env_findings(mode, values, list(s.domains))


def django_checks(host, s) -> list[Finding]:
    """Django's effective settings, `check --deploy`, and what a stranger gets."""
    findings = backend.app_settings(host, s)
    if findings[0].check != "app settings":   # manage.py runs
        deploy = host.probe(plan.manage_command(s, "check --deploy"), sudo=True)
        findings.append(checks.check_deploy_finding(deploy.stdout + deploy.stderr, deploy.failed))
    domain = s.domains[0] if s.domains else "localhost"
    socket = plan.socket_path(s, service.served(host, s) or "none")
    outside = host.probe(checks.outside_probe_command(socket, domain, s.backend.api_prefix, health_url(s)), sudo=True)
    return findings + checks.outside_findings(facts.parse_key_values(outside.stdout))


def bundle_checks(host, s) -> list[Finding]:
    out = plan.export_dir(s)
    api = build.api_url_of(s)
    answer = json.loads(host.probe(checks.bundle_command(out, bundle.BAD_API.pattern.decode(), api),
                                   sudo=True).stdout or "{}")
    return checks.bundle_findings(answer, api, s.frontend.bundle_allow)


def site_checks(host, s) -> list[Finding]:
    """Redirect loops (with the chain) and the CORS preflight, as smoke sees them."""
    results, refused = probe_site(host, s)
    findings = []
    for result, page in zip(results, pages(s)):
        if result.problem is None:
            findings.append(Finding(f"GET {result.path}", OK, f"{result.status} after {len(result.chain) - 1} "
                                                               "redirect(s)"))
            continue
        if page.by_backend:
            fix = f"fab logs, then fab restart; or change {page.setting}"
        else:   # a page of the export: nginx's routing is wrong (a loop, or a proxied prefix over the page)
            fix = ("fab nginx-reload (the template serves the export's pages; fab nginx-lint names prefixes that "
                   f"shadow them); or change {page.setting}")
        findings.append(Finding(f"GET {result.path}", FAIL, f"{result.problem}: {result.describe_chain()}", fix))
    if results[-1].problem is None:
        findings.append(Finding("CORS preflight", FAIL if refused else OK, refused[0] if refused else
                                f"answered for {', '.join(s.domains) or 'no domain'}",
                                "fab env, then fab restart" if refused else ""))
    return findings


def certificate_checks(host, s) -> list[Finding]:
    if not s.domains:
        return [Finding("certificate", WARN, "no domains set", "set qms.domains, then fab tls")]
    found = tls.certificate_facts(host, s)
    days = tls.days_left(found[1]) if found else None
    covers = bool(found) and set(s.domains) <= found[0]
    timer = checks.renewal_finding(checks.parse_units_show(host.probe(checks.RENEWAL_COMMAND).stdout))
    return [checks.certificate_finding(days, covers, s.tls.renew_before_days), timer]


def deploy_checks(host, s) -> list[Finding]:
    found = clone.parse_status(host.probe(clone.status_command(s.app_root)).stdout, clone.generated_patterns(s),
                               clone.database_path(s))
    tip = clone.parse_commit(host.probe(clone.ls_remote_command(s.app_root, "refs/heads/" + s.branch)).stdout)
    findings = [checks.git_finding(found.edits, git.head(host, s), tip, s.branch)]
    held = lock.status(host, s)
    if held.get("alive"):
        findings.append(Finding("deploy lock", WARN, f"held by {records.describe_owner(held['owner'])}",
                                "wait for that deploy to finish"))
    elif held.get("locked"):
        findings.append(Finding("deploy lock", WARN, f"stale: {records.describe_owner(held['owner'])} was interrupted",
                                "fab history and fab smoke, then fab unlock (or the next deploy takes it over)"))
    else:
        findings.append(Finding("deploy lock", OK, "free"))
    entries = read_history(host, s)
    if entries:
        last = entries[-1]
        good = last.get("result") == "ok"
        findings.append(Finding("last deploy", OK if good else WARN,
                                f"{last['action']} {last['id']} by {last.get('by', '?')}: {last.get('result')}"
                                + ("" if good else f" at {last.get('failed_step')}"),
                                "" if good else "fab history shows why; fab deploy when fixed"))
    else:
        findings.append(Finding("last deploy", WARN, "no history on the server", "fab setup"))
    return findings


def local_checks(s) -> list[Finding]:
    try:
        repo = secrets_check.repo_of(s, None)
    except UserError as not_git:
        return [Finding("secrets in git (here)", WARN, not_git.reason, "set qms.app_dir to your app's checkout")]
    found = secrets_check.problems(s, repo)
    return [Finding("secrets in git (here)", FAIL if found else OK, found[0] if found else f"{repo}: clean",
                    "fab check-secrets lists every problem and its fix" if found else "")]


CHECKS = (software_checks, backend_checks, port_checks, nginx_checks, permission_checks, env_checks, django_checks, bundle_checks,
          site_checks, certificate_checks,
          lambda host, s: checks.resource_findings(host.probe(checks.RESOURCES_COMMAND).stdout),
          deploy_checks)


def browser_findings(host, s) -> list[Finding]:
    from .browser_check import browser_rows, first_problem   # the browser extra is optional: load it only when asked
    rows = browser_rows(host, s)
    problem = first_problem(host, rows)
    if problem:
        return [Finding("browser", FAIL, problem.split("] ", 1)[-1], "fab browser-check lists every request")]
    if not api_calls(rows, build.api_url_of(s)):
        return [Finding("browser", WARN, no_api_note(build.api_url_of(s)), "set qms.browser.pages")]
    return [Finding("browser", OK, f"{len(rows)} requests: no bad request, CORS rejection or JavaScript error")]


@task(name="doctor", help={"json": "print the findings as JSON (for scripts) instead of a table",
                           "browser": "also open the key pages in headless Chromium (browser-check)"})
@read_only
def doctor(c, json_=False, browser=False):
    """Run the troubleshooting checklist: what is wrong, the fix.

    Read-only: the OS and versions of nginx, python3, systemd, OpenSSH, certbot and sqlite3; service, restarts,
    ExecStart, the unit's exposure, ports, ufw, the web ports from here (a cloud firewall), nginx -t, file modes,
    .env, API URL in the bundle, CORS, redirect loops, certificate and renewal (apt or snap certbot),
    disk/memory/swap, git, lock, last deploy, local secrets. Exit 1 on a fail.
    """
    s = settings_of(c)
    host = host_of(c, s)
    findings = [finding for check in CHECKS for finding in check(host, s)] + local_checks(s)
    if browser:
        findings += browser_findings(host, s)
    print_findings(f"{host.name}: doctor", findings, json_, {"host": host.name})
    failed = [f.check for f in findings if f.result == FAIL]
    if failed:
        raise UserError(f"[{host.name}] {len(failed)} check(s) failed: {', '.join(failed)}: the fix column says how")
    warned = sum(f.result == WARN for f in findings)
    if not json_:
        host.say(f"all {len(findings)} checks {OK}" + (f" ({warned} warning(s))" if warned else ""))


ns = Collection(doctor)
