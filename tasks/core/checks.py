"""The guide's troubleshooting checklist as facts: for each check, the command that gathers what the server shows
and a pure parser that turns its output into a finding (ok, warn or fail, what was seen, and the fix). Tests feed
the parsers captured outputs; `doctor` runs the commands."""
from __future__ import annotations

import re
import shlex
from dataclasses import asdict, dataclass
from typing import Optional

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
    return (f"systemctl show -p ActiveState -p SubState -p Result {u}.service; "
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
    return findings


def active_command(unit: str) -> str:
    return f"systemctl is-active {shlex.quote(unit)}"


def parse_active(output: str, unit: str, fix: str) -> Finding:
    state = output.strip() or "unknown"
    return Finding(unit, OK if state == "active" else FAIL, state, "" if state == "active" else fix)


def timer_finding(output: str) -> Finding:
    state = output.strip() or "unknown"
    return Finding("certificate renewal timer", OK if state == "active" else WARN, f"certbot.timer {state}",
                   "" if state == "active" else "sudo systemctl enable --now certbot.timer")


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


def port_findings(listeners: dict[int, str], backend_port: int, tls_expected: bool) -> list[Finding]:
    wanted = [(backend_port, "the backend (systemd's socket)", "fab service, then fab restart"),
              (80, "nginx, HTTP", "fab nginx-reload"), (443, "nginx, HTTPS", "fab tls")]
    findings = []
    for port, what, fix in wanted:
        if port in listeners:
            findings.append(Finding(f"port {port}", OK, f"{what}: {listeners[port]}"))
        else:
            findings.append(Finding(f"port {port}", FAIL if port != 443 or tls_expected else WARN,
                                    f"nothing listens ({what})", fix))
    return findings


# -- nginx -t --------------------------------------------------------------------------------------------------
def parse_nginx_t(output: str, failed: bool) -> Finding:
    """`nginx -t 2>&1`: warnings count as failures (guide section 3: a warning hid a broken directive)."""
    problems = [line.split("] ", 1)[-1].strip() for line in output.splitlines()
                if re.search(r"\[(emerg|alert|crit|warn)\]", line)]
    if failed or problems:
        return Finding("nginx -t", FAIL, problems[0] if problems else (output.strip().splitlines() or ["failed"])[-1],
                       "fab nginx-reload (installs the rendered, tested site; fab nginx-lint shows why)")
    return Finding("nginx -t", OK, "syntax ok, no warnings")


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
        "   p=os.path.join(d,n); data=open(p,'rb').read(); seen=seen or api in data; m=bad.search(data)\n"
        "   if m: found.append([os.path.relpath(p,out),m.group(0).decode(errors='replace')])\n"
        "print(json.dumps({'api_url':info.get('api_url'),'bad':found[:5],'has_api':seen,'exists':os.path.isdir(out)}))")
    return f"python3 -c {shlex.quote(script)} {shlex.quote(out)} {shlex.quote(bad_pattern)} {shlex.quote(api_url)}"


def bundle_findings(answer: dict, api_url: str) -> list[Finding]:
    if not answer.get("exists"):
        return [Finding("API URL in the bundle", FAIL, "no frontend is served", "fab build, then fab upload")]
    fix = "fab build, then fab upload (the build bakes the settings' API URL in)"
    if answer.get("bad"):
        path, text = answer["bad"][0]
        return [Finding("API URL in the bundle", FAIL, f"{path} calls {text}", fix)]
    if not answer.get("has_api"):
        return [Finding("API URL in the bundle", FAIL, f"{api_url} appears nowhere in the served JS", fix)]
    if answer.get("api_url") != api_url:
        return [Finding("API URL in the bundle", WARN, f"build-info.json says {answer.get('api_url')}", fix)]
    return [Finding("API URL in the bundle", OK, api_url)]


# -- resources -------------------------------------------------------------------------------------------------
RESOURCES_COMMAND = "df -Pk / | tail -n 1; grep -E '^(MemTotal|MemAvailable|SwapTotal|SwapFree):' /proc/meminfo"


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
    mem = {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
    if mem.get("MemTotal"):
        share = mem.get("MemAvailable", 0) / mem["MemTotal"]
        available = mem.get("MemAvailable", 0) // 1024
        findings.append(Finding("memory available", OK if share >= warn_below else WARN,
                                f"{available} MB of {mem['MemTotal'] // 1024} MB ({share:.0%})",
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
def git_finding(status: str, head: str, remote_tip: str, branch: str) -> Finding:
    dirty = [line[3:] for line in status.splitlines() if line.strip()]
    if dirty:
        return Finding("server git", FAIL, f"local edits: {', '.join(dirty[:3])}",
                       "put them in the repository, then git stash -u on the server")
    if not head:
        return Finding("server git", FAIL, "no clone", "fab setup")
    if remote_tip and remote_tip != head:
        return Finding("server git", WARN, f"at {head[:7]}, {branch} is at {remote_tip[:7]}", "fab deploy")
    return Finding("server git", OK, f"at {head[:7]} = {branch}")
