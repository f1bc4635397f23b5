"""The guide's troubleshooting checklist as facts: for each check, the command that gathers what the server shows
and a pure parser that turns its output into a finding (ok, warn or fail, what was seen, and the fix). Tests feed
the parsers captured outputs; `doctor` runs the commands."""
from __future__ import annotations

import json
import posixpath
import re
import shlex
from dataclasses import asdict, dataclass
from typing import Optional

from .bundle import allowed

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Finding:
    check: str
    result: str          # ok, warn or fail
    saw: str
    fix: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def worst(findings: list[Finding]) -> str:
    return FAIL if any(f.result == FAIL for f in findings) else WARN if any(f.result == WARN for f in findings) else OK


# -- systemd ---------------------------------------------------------------------------------------------------
def unit_command(unit: str) -> str:
    """The unit's state, its ExecStart program and whether that is executable, and its restarts in the last hour."""
    u = shlex.quote(unit)
    return (f"systemctl show -p ActiveState -p SubState -p Result -p MemoryMax -p MemoryCurrent {u}.service; "
            f"program=$(systemctl show -p ExecStart --value {u}.service | sed -n 's/.*path=\\([^ ;]*\\).*/\\1/p'); "
            "echo program=$program; if [ -n \"$program\" ] && [ -x \"$program\" ]; then echo executable=yes; "
            "else echo executable=no; fi; "
            f"echo socket=$(systemctl is-active {u}.socket); "
            f"echo restarts=$(journalctl -u {u}.service --since '1 hour ago' -o cat 2>/dev/null "
            "| grep -c 'Scheduled restart job')")


def parse_unit(output: str, unit: str) -> list[Finding]:
    found = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
    state, program = found.get("ActiveState", "unknown"), found.get("program", "")
    findings = []
    if found.get("executable") != "yes":
        findings.append(Finding(f"{unit} ExecStart", FAIL,
                                f"{program or 'no ExecStart'} is not an executable file (systemd: 203/EXEC)",
                                "fab service (it writes absolute paths; run deps first if the venv is missing)"))
    else:
        findings.append(Finding(f"{unit} ExecStart", OK, program))
    restarts = int(found.get("restarts", "0") or 0)
    # socket activation: an inactive service behind an active socket starts on the first request
    waiting = state == "inactive" and found.get("socket") == "active" and found.get("Result") == "success"
    running = state == "active" or waiting
    findings.append(Finding(f"{unit} service", OK if running and not restarts else WARN if running else FAIL,
                            f"{state} ({found.get('SubState', '?')}), {restarts} restart(s) in the last hour"
                            + ("; its socket waits for the first request" if waiting else ""),
                            "" if running and not restarts else "fab logs, then fab restart"))
    findings.append(memory_limit_finding(found.get("MemoryMax", ""), found.get("MemoryCurrent", ""), unit))
    return findings


def memory_limit_finding(limit: str, current: str, unit: str) -> Finding:
    """The unit's MemoryMax, and whether the kernel enforces it: without per-unit accounting (cgroup v1) systemd
    reports no MemoryCurrent, and the limit is only written down."""
    if not limit.isdigit():
        return Finding(f"{unit} memory limit", WARN, f"MemoryMax={limit or 'unset'}: one leaking worker can take the "
                                                     "whole box", "fab service (it writes qms.backend.memory_max)")
    if current.isdigit():
        return Finding(f"{unit} memory limit", OK, f"MemoryMax {int(limit) >> 20} MB, enforced; it uses "
                                                   f"{int(current) >> 20} MB")
    return Finding(f"{unit} memory limit", OK, f"MemoryMax {int(limit) >> 20} MB, not enforced by this kernel "
                                               "(cgroup v1: no per-unit memory accounting; Ubuntu 22.04 and later "
                                               "run cgroup v2, which enforces it)")


def active_command(unit: str) -> str:
    return f"systemctl is-active {shlex.quote(unit)}"


def parse_active(output: str, unit: str, fix: str) -> Finding:
    state = output.strip() or "unknown"
    return Finding(unit, OK if state == "active" else FAIL, state, "" if state == "active" else fix)


# How the box got certbot decides its renewal timer: apt's package brings certbot.timer, the snap (certbot's own
# advice for Ubuntu) snap.certbot.renew.timer. Both renew the same /etc/letsencrypt.
RENEWAL_TIMERS = {"certbot.timer": "apt", "snap.certbot.renew.timer": "snap"}
RENEWAL_COMMAND = "systemctl show -p Id -p LoadState -p ActiveState " + " ".join(RENEWAL_TIMERS)


def parse_units_show(output: str) -> dict[str, dict]:
    """`systemctl show -p Id ...` of several units (a blank line between them) -> {Id: {property: value}}."""
    units = {}
    for block in output.strip().split("\n\n"):
        found = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if found.get("Id"):
            units[found["Id"]] = found
    return units


def renewal_finding(units: dict[str, dict]) -> Finding:
    """Renewal by whichever certbot is installed; none, or two at once, said plainly."""
    present = [name for name in RENEWAL_TIMERS if units.get(name, {}).get("LoadState") == "loaded"]
    states = [f"{name} ({RENEWAL_TIMERS[name]}) {units[name].get('ActiveState', 'unknown')}" for name in present]
    if not present:
        return Finding("certificate renewal timer", WARN, "neither certbot.timer (apt) nor snap.certbot.renew.timer "
                       "(snap): nothing renews the certificate", "fab setup (installs apt's certbot and its timer)")
    if len(present) > 1:
        return Finding("certificate renewal timer", WARN,
                       f"two certbots renew the same certificates: {', '.join(states)}",
                       "keep one: sudo snap remove certbot (setup installs apt's certbot when it is missing)")
    active = units[present[0]].get("ActiveState") == "active"
    return Finding("certificate renewal timer", OK if active else WARN, states[0],
                   "" if active else f"sudo systemctl enable --now {present[0]}")


def exposure_command(unit: str) -> str:
    return f"systemd-analyze security --no-pager {shlex.quote(unit)}.service 2>&1 | tail -n 1"


def parse_exposure(last_line: str) -> Optional[tuple[float, str]]:
    """`systemd-analyze security`'s last line -> (exposure 0-10, its label), or None when it did not rate the unit."""
    found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?) (\w+)", last_line)
    return (float(found[1]), found[2]) if found else None


def exposure_finding(last_line: str, unit: str, limit: float) -> Finding:
    rated = parse_exposure(last_line)
    if rated is None:
        return Finding(f"{unit} exposure", WARN, f"systemd-analyze security: {last_line.strip() or 'no answer'}",
                       "fab service (installs the unit), then fab doctor")
    score, label = rated
    return Finding(f"{unit} exposure", OK if score <= limit else WARN, f"{score} {label} (systemd-analyze security)",
                   "" if score <= limit else f"fab service (installs the hardened unit; an edited one rates higher); "
                                             f"the warning starts above qms.backend.exposure_max ({limit})")


# -- ports -----------------------------------------------------------------------------------------------------
LISTEN_COMMAND = "ss -Hltnp"


def parse_listeners(output: str) -> dict[int, str]:
    """port -> the process names listening on it, from `ss -Hltnp` (as root, to see every process)."""
    found: dict[int, set] = {}
    for line in output.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[0] != "LISTEN":
            continue
        port = fields[3].rsplit(":", 1)[-1]
        if port.isdigit():
            found.setdefault(int(port), set()).update(re.findall(r'\("([^"]+)",pid=', line) or ["?"])
    return {port: ",".join(sorted(names)) for port, names in found.items()}


def port_findings(listeners: dict[int, str], tls_expected: bool) -> list[Finding]:
    """nginx's ports (the backend listens on its release's socket, not a port)."""
    wanted = [(80, "nginx, HTTP", "fab nginx-reload"), (443, "nginx, HTTPS", "fab tls")]
    findings = []
    for port, what, fix in wanted:
        if port in listeners:
            findings.append(Finding(f"port {port}", OK, f"{what}: {listeners[port]}"))
        else:
            findings.append(Finding(f"port {port}", FAIL if port != 443 or tls_expected else WARN,
                                    f"nothing listens ({what})", fix))
    return findings


# -- firewalls ---------------------------------------------------------------------------------------------------
# Ubuntu images ship ufw inactive; once enabled it denies what no rule allows. As root, else it cannot read iptables.
UFW_COMMAND = "if command -v ufw >/dev/null; then ufw status verbose 2>&1; else echo 'ufw: not installed'; fi"
WEB_PORTS = (80, 443)


@dataclass(frozen=True)
class UfwRule:
    to: str        # 80/tcp, 80,443/tcp (Nginx Full), 1000:2000/tcp, Anywhere, 8080 on eth0, 10.0.0.5 443/tcp
    action: str    # ALLOW, DENY, REJECT or LIMIT
    source: str    # Anywhere, or an address or network


@dataclass(frozen=True)
class Ufw:
    state: str                       # active, inactive, missing, or the error ufw printed
    incoming: str = ""               # the default for incoming: allow, deny or reject
    rules: tuple[UfwRule, ...] = ()  # the incoming IPv4 rules, in ufw's order (the first that matches decides)


def parse_ufw(output: str) -> Ufw:
    """`ufw status verbose` (or UFW_COMMAND's `not installed`)."""
    if output.strip() == "ufw: not installed":
        return Ufw("missing")
    status = re.search(r"^Status: (\w+)", output, re.M)
    if not status:
        return Ufw(next((line.strip() for line in output.splitlines() if line.strip()), "no output"))
    incoming = re.search(r"^Default: (\w+) \(incoming\)", output, re.M)
    rules, table = [], False
    for line in output.splitlines():
        if line.startswith("--"):
            table = True
            continue
        row = re.match(r"(.+?)\s+(ALLOW|DENY|REJECT|LIMIT)(?: (IN|OUT|FWD))?\s+(.+?)\s*$", line) if table else None
        if row and row[3] in (None, "IN") and "(v6)" not in row[1]:
            rules.append(UfwRule(row[1].strip(), row[2], row[4]))
    return Ufw(status[1], incoming[1] if incoming else "", tuple(rules))


def _covers(to: str, port: int) -> bool:
    """Whether a rule's To column means TCP `port` on every address of the server."""
    to = re.sub(r"\s*\(.*\)", "", to).split(" on ")[0].strip()   # app profile, (v6), interface
    if to == "Anywhere":
        return True
    ports, _, proto = to.partition("/")
    if proto not in ("", "tcp") or not re.fullmatch(r"[\d,:]+", ports):
        return False   # UDP, or one destination address only
    return any(int(low) <= port <= int(high or low)
               for low, _, high in (item.partition(":") for item in ports.split(",")))


def ufw_blocked(ufw: Ufw, ports) -> dict[int, str]:
    """port -> why ufw keeps the world away from it (only rules from Anywhere count: the first one that covers the
    port decides, else the default)."""
    if ufw.state != "active":
        return {}
    blocked = {}
    for port in ports:
        rule = next((r for r in ufw.rules if r.source == "Anywhere" and _covers(r.to, port)), None)
        if rule is None and ufw.incoming != "allow":
            blocked[port] = f"default {ufw.incoming or 'deny'} incoming"
        elif rule is not None and rule.action in ("DENY", "REJECT"):
            blocked[port] = f"rule {rule.to} {rule.action}"
    return blocked


def ufw_finding(ufw: Ufw, ports) -> Finding:
    if ufw.state in ("missing", "inactive"):
        return Finding("ufw", OK, "not installed" if ufw.state == "missing" else "inactive")
    if ufw.state != "active":
        return Finding("ufw", WARN, f"cannot read it: {ufw.state}", "sudo ufw status verbose")
    blocked = ufw_blocked(ufw, ports)
    if not blocked:
        return Finding("ufw", OK, f"active, allows {', '.join(map(str, ports))}")
    opening = f"{','.join(map(str, blocked))}/tcp"
    by_rule = any(why.startswith("rule ") for why in blocked.values())
    return Finding("ufw", FAIL, "active, blocks " + ", ".join(f"{port} ({why})" for port, why in blocked.items()),
                   f"sudo ufw insert 1 allow {opening} (ahead of the rule that denies it)" if by_rule
                   else f"sudo ufw allow {opening}")


CLOUD_FIREWALL = ("open TCP {port} in the cloud's firewall: Lightsail: the instance's Networking tab, IPv4 firewall, "
                  "add rule {name}; EC2: the security group's inbound rules")


def reach_findings(address: str, answers: dict[int, str], listeners: dict[int, str],
                   ufw_blocks: dict[int, str]) -> list[Finding]:
    """A TCP connect from this machine to the server's address, per port that listens there (answers: '' when it
    connected, else what happened). A port that listens but does not answer from here is kept out by a firewall: ufw
    when it blocks the port, else the cloud's, which only its console shows."""
    findings = []
    for port, error in answers.items():
        if not error:
            findings.append(Finding(f"port {port} from here", OK, f"{address}:{port} answers this machine"))
            continue
        fix = ("ufw blocks it (see ufw)" if port in ufw_blocks
               else CLOUD_FIREWALL.format(port=port, name="HTTPS" if port == 443 else "HTTP"))
        findings.append(Finding(f"port {port} from here", FAIL, f"{address}:{port} {error} from this machine, "
                                f"though {listeners[port]} listens on the server", fix))
    return findings


# -- nginx -t --------------------------------------------------------------------------------------------------
def nginx_test_finding(problem: Optional[str]) -> Finding:
    """nginx_commands.parse_test's answer as doctor's row."""
    if problem:
        return Finding("nginx -t", FAIL, problem,
                       "fab nginx-reload (installs the rendered, tested site; fab nginx-lint shows why)")
    return Finding("nginx -t", OK, "syntax ok, no warnings")


# -- file modes ------------------------------------------------------------------------------------------------
def untraversable_finding(user: str, path: str, mode: str) -> Finding:
    """A directory on the way to the site that nginx's user cannot enter (guide section 4)."""
    home = posixpath.dirname(path.rstrip("/")) == "/home"
    return Finding("nginx can read the site", FAIL, f"{user} cannot enter {path} (mode {mode}"
                   + (": Ubuntu 21.04+ makes home directories 750)" if home else ")"),
                   "fab fix-perms (adds o+x: nginx may enter it, not list it)")


# -- the server .env -------------------------------------------------------------------------------------------
REQUIRED_ENV = ("SECRET_KEY", "ALLOWED_HOSTS", "CORS_ALLOWED_ORIGINS", "CSRF_TRUSTED_ORIGINS", "DATABASE_PATH")


def env_findings(mode: Optional[str], values: Optional[dict], domains: list[str]) -> list[Finding]:
    """From the .env's mode (stat %a) and its parsed values (never shown)."""
    if values is None:
        return [Finding(".env", FAIL, "missing", "fab env")]
    findings = [Finding(".env mode", OK if mode == "600" else FAIL, mode or "?",
                        "" if mode == "600" else "fab env (writes it 0600)")]
    empty = [key for key in REQUIRED_ENV if not values.get(key)]
    findings.append(Finding(".env keys", FAIL if empty else OK, f"missing or empty: {', '.join(empty)}" if empty
                            else f"{len(REQUIRED_ENV)} required keys set (values not shown)",
                            "fab env" if empty else ""))
    for key in ("CORS_ALLOWED_ORIGINS", "CSRF_TRUSTED_ORIGINS"):
        listed = [o.strip() for o in values.get(key, "").split(",") if o.strip()]
        missing = [f"https://{d}" for d in domains if f"https://{d}" not in listed]
        findings.append(Finding(f".env {key}", FAIL if missing else OK,
                                f"lacks {', '.join(missing)}" if missing else ", ".join(listed),
                                "fab env, then fab restart" if missing else ""))
    return findings


# -- what the app really runs (DESIGN: check what the app does, not what we wrote for it) -------------------------
# Run by `manage.py shell -c` in the service's environment. Values a browser could abuse are read; the secret key
# only as where it comes from. `lines` are the settings.py lines that set each name, to show what to change.
DJANGO_SETTINGS_SCRIPT = """\
import importlib, json, os, re
from django.conf import settings as s
key = str(s.SECRET_KEY)
origin = "env" if key == os.environ.get("SECRET_KEY") else "insecure" if key.startswith("django-insecure-") else "code"
cors = list(getattr(s, "CORS_ALLOWED_ORIGINS", None) or getattr(s, "CORS_ORIGIN_WHITELIST", None) or [])
lines = {}
try:
    path = importlib.import_module(s.SETTINGS_MODULE).__file__
    for number, line in enumerate(open(path, encoding="utf-8", errors="replace"), 1):
        name = re.match(r"([A-Z_]+)\\s*=", line)
        if name:
            lines[name[1]] = f"{os.path.relpath(path)}:{number}: {line.strip()[:100]}"   # the last one counts
except Exception:
    pass
print("QMS-SETTINGS " + json.dumps({
    "DEBUG": bool(s.DEBUG), "SECRET_KEY": origin, "ALLOWED_HOSTS": list(s.ALLOWED_HOSTS),
    "CORS_ALLOW_ALL_ORIGINS": bool(getattr(s, "CORS_ALLOW_ALL_ORIGINS", False)
                                   or getattr(s, "CORS_ORIGIN_ALLOW_ALL", False)),
    "CORS_ALLOWED_ORIGINS": cors, "CSRF_TRUSTED_ORIGINS": list(getattr(s, "CSRF_TRUSTED_ORIGINS", [])),
    "STATIC_ROOT": str(s.STATIC_ROOT or ""), "DATABASE": str(s.DATABASES.get("default", {}).get("NAME", "")),
    "lines": lines}))
"""

# What settings.py should say instead, for each value the server's .env sets (README: Prepare your app).
READS_ENV = {
    "DEBUG": 'DEBUG = os.environ.get("DEBUG") == "1"',
    "SECRET_KEY": 'SECRET_KEY = os.environ["SECRET_KEY"]',
    "ALLOWED_HOSTS": 'ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "").split(",")',
    **{name: f'{name} = [o for o in os.environ.get("{name}", "").split(",") if o]'
       for name in ("CORS_ALLOWED_ORIGINS", "CSRF_TRUSTED_ORIGINS")},
    "STATIC_ROOT": 'STATIC_ROOT = os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles")',
    "DATABASE": '"NAME": os.environ.get("DATABASE_PATH", BASE_DIR / "db.sqlite3") in DATABASES["default"]',
}


def parse_django_settings(output: str) -> Optional[dict]:
    line = next((l for l in output.splitlines() if l.startswith("QMS-SETTINGS ")), None)
    return json.loads(line.split(" ", 1)[1]) if line else None


def django_findings(app: dict, env: dict, domains: list[str]) -> list[Finding]:
    """The app's effective settings against the .env the tool wrote: insecure values fail, and a value the app does
    not take from the .env (settings in code) is named with its settings.py line and the line to write instead."""
    lines = app.get("lines", {})

    def change(name: str) -> str:
        where = lines.get("DATABASES" if name == "DATABASE" else name)
        return (f"{where} -> " if where else "in settings.py: ") + READS_ENV[name]

    origins = [f"https://{d}" for d in domains]
    findings = [
        Finding("app DEBUG", FAIL if app["DEBUG"] else OK, "True: error pages show code and settings to anyone"
                if app["DEBUG"] else "False", change("DEBUG") if app["DEBUG"] else ""),
        Finding("app SECRET_KEY", OK if app["SECRET_KEY"] == "env" else FAIL,
                {"env": "from the secrets file", "insecure": "Django's django-insecure- key from the code",
                 "code": "set in the code, not from the secrets file"}[app["SECRET_KEY"]],
                "" if app["SECRET_KEY"] == "env" else change("SECRET_KEY")),
    ]
    hosts = app["ALLOWED_HOSTS"]
    missing_hosts = [d for d in domains if d not in hosts and "*" not in hosts]
    findings.append(Finding("app ALLOWED_HOSTS", FAIL if "*" in hosts or missing_hosts else OK,
                            "'*': any Host header is served" if "*" in hosts else
                            f"lacks {', '.join(missing_hosts)}" if missing_hosts else ", ".join(hosts),
                            change("ALLOWED_HOSTS") if "*" in hosts or missing_hosts else ""))
    if app["CORS_ALLOW_ALL_ORIGINS"]:
        findings.append(Finding("app CORS", FAIL, "CORS_ALLOW_ALL_ORIGINS: any site may call the API from a "
                                "visitor's browser",
                                "remove CORS_ALLOW_ALL_ORIGINS; " + change("CORS_ALLOWED_ORIGINS")))
    for name in ("CORS_ALLOWED_ORIGINS", "CSRF_TRUSTED_ORIGINS"):
        if name == "CORS_ALLOWED_ORIGINS" and app["CORS_ALLOW_ALL_ORIGINS"]:
            continue
        missing = [o for o in origins if o not in app[name]]
        in_code = sorted(app[name]) != sorted(o for o in env.get(name, "").split(",") if o)
        findings.append(Finding(f"app {name}", FAIL if missing else WARN if in_code else OK,
                                f"lacks {', '.join(missing)}" if missing else
                                f"{', '.join(app[name])} (set in the code: the .env's is not used)" if in_code else
                                ", ".join(app[name]) or "none", change(name) if missing or in_code else ""))
    for name, key, use in (("STATIC_ROOT", "STATIC_ROOT", "nginx serves"),
                           ("DATABASE", "DATABASE_PATH", "backups copy")):
        wanted = env.get(key, "")
        findings.append(Finding(f"app {name}", OK if app[name] == wanted else FAIL, app[name] or "not set",
                                "" if app[name] == wanted else f"{use} {wanted}: " + change(name)))
    return findings


FOREIGN = "evil.example"   # reserved (RFC 2606): no real site


def outside_probe_command(socket: str, domain: str, api_prefix: str, health: str) -> str:
    """What a stranger gets: a foreign Host header straight at the backend, a CORS preflight from a foreign origin
    and a missing API page through nginx."""
    site = f"--resolve {domain}:80:127.0.0.1 --resolve {domain}:443:127.0.0.1"
    missing = shlex.quote(f"http://{domain}{api_prefix}qms-doctor-no-such-page/")
    return (f"echo host=$(curl -s --noproxy '*' -o /dev/null -w '%{{http_code}}' --max-time 5 -H 'Host: {FOREIGN}' "
            f"--unix-socket {shlex.quote(socket)} {shlex.quote('http://127.0.0.1' + health)}); "
            f"echo origin=$(curl -s -k -L --noproxy '*' -o /dev/null -D - --max-time 5 {site} -X OPTIONS "
            f"-H 'Origin: https://{FOREIGN}' -H 'Access-Control-Request-Method: GET' "
            f"{shlex.quote(f'http://{domain}{health}')} | grep -ci '^access-control-allow-origin:'); "
            f"echo debug404=$(curl -s -k -L --noproxy '*' --max-time 5 {site} {missing} | grep -c 'DEBUG = True')")


def outside_findings(found: dict) -> list[Finding]:
    host, origin, debug = found.get("host", ""), found.get("origin", "0"), found.get("debug404", "0")
    return [
        Finding("foreign Host header", OK if host == "400" else FAIL, f"Host: {FOREIGN} gets {host or 'nothing'}",
                "" if host == "400" else "ALLOWED_HOSTS must list only your domains (see app ALLOWED_HOSTS)"),
        Finding("foreign Origin", OK if origin in ("", "0") else FAIL,
                f"a preflight from https://{FOREIGN} is " + ("refused" if origin in ("", "0") else "allowed"),
                "" if origin in ("", "0") else "CORS must allow only your domains (see app CORS)"),
        Finding("404 page", OK if debug in ("", "0") else FAIL,
                "Django's debug page, with the URL patterns" if debug not in ("", "0") else "no debug details",
                "" if debug in ("", "0") else "DEBUG must be off (see app DEBUG)"),
    ]


def check_deploy_finding(output: str, failed: bool) -> Finding:
    """`manage.py check --deploy`: Django's own list of what is unsafe in production."""
    ids = sorted(set(re.findall(r"\((security\.[WE]\d+|[a-z_]+\.[WE]\d+)\)", output)))
    # nginx sets HSTS and redirects to HTTPS in front of the app: Django need not do it again
    left = [i for i in ids if i not in ("security.W004", "security.W008")]
    if failed and not ids:
        return Finding("check --deploy", FAIL, (output.strip().splitlines() or ["failed"])[-1], "fab logs")
    settings = [DEPLOY_FIXES[i] for i in left if i in DEPLOY_FIXES]
    return Finding("check --deploy", FAIL if failed else WARN if left else OK,
                   ", ".join(left) if left else "no issues (W004, W008: nginx does HSTS and the redirect)",
                   (f"in settings.py: {'; '.join(settings)}; " if settings else "")
                   + "fab manage 'check --deploy' explains each" if left else "")


# check --deploy's usual warnings behind nginx, and the line that answers each
DEPLOY_FIXES = {
    "security.W009": READS_ENV["SECRET_KEY"],
    "security.W012": "SESSION_COOKIE_SECURE = not DEBUG",
    "security.W016": "CSRF_COOKIE_SECURE = not DEBUG",
    "security.W018": READS_ENV["DEBUG"],
    "security.W020": READS_ENV["ALLOWED_HOSTS"],
}


# -- the live bundle -------------------------------------------------------------------------------------------
def bundle_command(out: str, bad_pattern: str, api_url: str) -> str:
    """On the server: build-info's API URL, the bad API addresses in the served JS/HTML, and whether the configured
    API URL is there at all (python3, so the pattern is the same one `build` refuses locally)."""
    script = (
        "import json,os,re,sys\n"
        "out,bad,api=sys.argv[1],re.compile(sys.argv[2].encode()),sys.argv[3].encode()\n"
        "try: info=json.load(open(os.path.join(out,'build-info.json')))\n"
        "except (OSError,ValueError): info={}\n"
        "found,seen=[],False\n"
        "for d,_,names in os.walk(out):\n"
        " for n in names:\n"
        "  if n.endswith(('.js','.html')):\n"
        "   p=os.path.join(d,n); data=open(p,'rb').read(); seen=seen or api in data\n"
        "   for m in bad.finditer(data):\n"
        "    c=data[max(0,m.start()-40):m.end()+40]\n"
        "    found.append([os.path.relpath(p,out),m.group(0).decode(errors='replace'),c.decode(errors='replace')])\n"
        "print(json.dumps({'api_url':info.get('api_url'),'bad':found[:50],'has_api':seen,'exists':os.path.isdir(out)}))")
    return f"python3 -c {shlex.quote(script)} {shlex.quote(out)} {shlex.quote(bad_pattern)} {shlex.quote(api_url)}"


def bundle_findings(answer: dict, api_url: str, allow: list) -> list[Finding]:
    """The served export judged as `build` judges it (the same pattern; the hits qms.frontend.bundle_allow lets
    past are left out)."""
    if not answer.get("exists"):
        return [Finding("API URL in the bundle", FAIL, "no frontend is served", "fab build, then fab upload")]
    fix = "fab build, then fab upload (the build bakes the settings' API URL in)"
    bad = [(path, text) for path, text, context in answer.get("bad", []) if not allowed(text, context, allow)]
    if bad:
        path, text = bad[0]
        return [Finding("API URL in the bundle", FAIL, f"{path} calls {text}", fix)]
    if not answer.get("has_api"):
        return [Finding("API URL in the bundle", FAIL, f"{api_url} appears nowhere in the served JS", fix)]
    if answer.get("api_url") != api_url:
        return [Finding("API URL in the bundle", WARN, f"build-info.json says {answer.get('api_url')}", fix)]
    return [Finding("API URL in the bundle", OK, api_url)]


# -- resources -------------------------------------------------------------------------------------------------
# The memory limit of the server's cgroup, v2 or v1, where there is one (a container, or the stand-in's 1 GB): then
# /proc/meminfo shows the host's memory, not what the app may use.
RESOURCES_COMMAND = (
    "df -Pk / | tail -n 1; grep -E '^(MemTotal|MemAvailable|SwapTotal|SwapFree):' /proc/meminfo; "
    "for d in /sys/fs/cgroup /sys/fs/cgroup/memory; do "
    "for f in memory.max memory.limit_in_bytes; do [ -r $d/$f ] && echo CgroupLimit: $(cat $d/$f); done; "
    "for f in memory.current memory.usage_in_bytes; do [ -r $d/$f ] && echo CgroupUsage: $(cat $d/$f); done; "
    "[ -r $d/memory.stat ] && sed -n 's/^\\(total_\\)\\{0,1\\}inactive_file /CgroupInactive: /p' $d/memory.stat | head -1; "
    "done 2>/dev/null; true")


def resource_findings(output: str, warn_below: float = 0.15) -> list[Finding]:
    lines = output.splitlines()
    findings = []
    disk = lines[0].split() if lines else []
    if len(disk) >= 4 and disk[1].isdigit():
        total, free = int(disk[1]), int(disk[3])
        share = free / total if total else 0
        findings.append(Finding("disk free", OK if share >= warn_below else WARN,
                                f"{free // 1024} MB of {total // 1024} MB ({share:.0%})",
                                "" if share >= warn_below else "fab backups (old backups and releases are pruned by "
                                                               "count: lower qms.backups.keep)"))
    mem = {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)
           if v.split() and v.split()[0].isdigit()}
    limit = mem.get("CgroupLimit", 0) // 1024
    if mem.get("MemTotal") and 0 < limit < mem["MemTotal"]:
        # page cache the kernel can drop counts as available, as in MemAvailable
        used = max(0, mem.get("CgroupUsage", 0) - mem.get("CgroupInactive", 0)) // 1024
        mem.update(MemTotal=limit, MemAvailable=max(0, limit - used))
    if mem.get("MemTotal"):
        share = mem.get("MemAvailable", 0) / mem["MemTotal"]
        available = mem.get("MemAvailable", 0) // 1024
        findings.append(Finding("memory available", OK if share >= warn_below else WARN,
                                f"{available} MB of {mem['MemTotal'] // 1024} MB ({share:.0%})"
                                + (" (the cgroup's limit)" if limit and mem["MemTotal"] == limit else ""),
                                "" if share >= warn_below else "lower qms.backend.workers or qms.backend.memory_max"))
        swap = mem.get("SwapTotal", 0)
        findings.append(Finding("swap", OK if swap else WARN, f"{swap // 1024} MB ({mem.get('SwapFree', 0) // 1024} "
                                                              "MB free)",
                                "" if swap else "a 1 GB box wants swap: fallocate -l 1G /swapfile, mkswap, swapon, "
                                                "/etc/fstab"))
    return findings


# -- certificate -----------------------------------------------------------------------------------------------
def certificate_finding(days: Optional[int], covers: bool, renew_before: int) -> Finding:
    if days is None:
        return Finding("certificate", FAIL, "none", "fab tls")
    if days < 0:
        return Finding("certificate", FAIL, f"expired {-days} days ago", "fab tls")
    if not covers:
        return Finding("certificate", FAIL, f"{days} days left, but it does not cover every domain", "fab tls")
    return Finding("certificate", OK if days >= renew_before else WARN, f"{days} days left",
                   "" if days >= renew_before else "fab tls --check (renewal should have happened)")


# -- git and deploys -------------------------------------------------------------------------------------------
def git_finding(dirty: list[str], head: str, remote_tip: str, branch: str) -> Finding:
    """The clone's edits (clone.parse_status: what the server generates is not one), commit and the remote's tip."""
    if dirty:
        return Finding("server git", FAIL, f"local edits: {', '.join(dirty[:3])}",
                       "put them in the repository, then git stash -u on the server")
    if not head:
        return Finding("server git", FAIL, "no clone", "fab setup")
    if remote_tip and remote_tip != head:
        return Finding("server git", WARN, f"at {head[:7]}, {branch} is at {remote_tip[:7]}", "fab deploy")
    return Finding("server git", OK, f"at {head[:7]} = {branch}")
