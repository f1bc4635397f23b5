"""Facts: a shell command that reads the server's state, and a pure parser of its output.

Nothing here touches the network; tests feed the parsers recorded output. Operations in host.py compare a
fact with the wanted state and act only on the difference.
"""
from __future__ import annotations

import difflib
import hashlib
import re
import shlex
from dataclasses import dataclass
from typing import Optional

STAT_FORMAT = "%F|%a|%U|%G|%s"


@dataclass(frozen=True)
class PathState:
    kind: str          # "directory", "regular file", "symbolic link", ...
    mode: int
    owner: str
    group: str
    size: int
    sha256: Optional[str] = None   # regular files only, when asked for

    @property
    def is_dir(self) -> bool:
        return self.kind == "directory"

    @property
    def is_file(self) -> bool:
        return self.kind in ("regular file", "regular empty file")


def path_state_command(path: str, with_hash: bool = False) -> str:
    """Prints one stat line (or `missing`), then the sha256 of a regular file when asked."""
    q = shlex.quote(path)
    command = f"if [ -e {q} ] || [ -L {q} ]; then stat -c {shlex.quote(STAT_FORMAT)} -- {q}; else echo missing; fi"
    if with_hash:
        command += f"; if [ -f {q} ]; then sha256sum -- {q}; fi"
    return command


def parse_path_state(output: str) -> Optional[PathState]:
    lines = output.strip().splitlines()
    if not lines or lines[0].strip() == "missing":
        return None
    kind, mode, owner, group, size = lines[0].strip().split("|")
    digest = lines[1].split()[0] if len(lines) > 1 and lines[1].strip() else None
    return PathState(kind, int(mode, 8), owner, group, int(size), digest)


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def dir_commands(state: Optional[PathState], path: str, mode: int, owner: str, group: str) -> list[str]:
    """What it takes to make `path` a directory with this mode and owner; [] when it already is."""
    q = shlex.quote(path)
    if state is None:
        return [f"install -d -m {mode:04o} -o {shlex.quote(owner)} -g {shlex.quote(group)} -- {q}"]
    if not state.is_dir:
        raise ValueError(f"{path} exists and is a {state.kind}, not a directory")
    return attribute_commands(state, path, mode, owner, group)


def attribute_commands(state: PathState, path: str, mode: int, owner: str, group: str) -> list[str]:
    q = shlex.quote(path)
    commands = []
    if (state.owner, state.group) != (owner, group):
        commands.append(f"chown {shlex.quote(owner)}:{shlex.quote(group)} -- {q}")
    if state.mode != mode:
        commands.append(f"chmod {mode:04o} -- {q}")
    return commands


def describe(mode: int, owner: str, group: str) -> str:
    return f"{mode:04o} {owner}:{group}"


def text_diff(old: Optional[bytes], new: bytes, path: str, limit: int = 200) -> str:
    """A unified diff for the dry run and for reviews; binary content is summarised, long diffs cut."""
    try:
        old_text = (old or b"").decode()
        new_text = new.decode()
    except UnicodeDecodeError:
        return f"binary content differs ({len(old or b'')} -> {len(new)} bytes)\n"
    lines = list(difflib.unified_diff(old_text.splitlines(keepends=True), new_text.splitlines(keepends=True),
                                      f"{path} (server)", f"{path} (new)"))
    lines = [line if line.endswith("\n") else line + "\n" for line in lines]
    if len(lines) > limit:
        lines = lines[:limit] + [f"... {len(lines) - limit} more diff lines\n"]
    return "".join(lines)


def parse_key_values(output: str) -> dict[str, str]:
    """`key=value` lines (as printed by a probe script) -> dict; other lines are ignored."""
    pairs = (line.split("=", 1) for line in output.splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def server_status_command(app_root: str, unit: str) -> str:
    """One round trip for the `status` overview: key=value lines."""
    r, current = shlex.quote(app_root), shlex.quote(f"{app_root}/current")
    return "; ".join([
        ". /etc/os-release 2>/dev/null; echo os=${PRETTY_NAME:-unknown}",
        "echo memory_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)",
        "echo available_kb=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)",
        f"echo disk_free_kb=$(df -Pk $([ -d {r} ] && echo {r} || echo /) | awk 'NR==2 {{print $4}}')",
        f"echo app_root=$([ -d {r} ] && echo present || echo missing)",
        f"echo git_head=$(git -C {r} rev-parse --short HEAD 2>/dev/null || echo none)",
        f"release=$(basename \"$(readlink {current})\" 2>/dev/null); echo release=${{release:-none}}",
        f"echo backend=$(systemctl is-active {shlex.quote(unit)}@\"$release\" 2>/dev/null || true)",
        "echo nginx=$(systemctl is-active nginx 2>/dev/null || true)",
        "echo uptime_s=$(cut -d. -f1 /proc/uptime)",
    ])


def ancestors(path: str) -> list[str]:
    """/a/b/c -> ['/', '/a', '/a/b', '/a/b/c']: every directory a reader must be able to traverse."""
    parts = [p for p in path.split("/") if p]
    return ["/"] + ["/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def traverse_command(user: str, dirs: list[str]) -> str:
    """The groups of `user`, then `mode|owner|group|path` of each directory."""
    quoted = " ".join(shlex.quote(d) for d in dirs)
    return f"echo \"groups=$(id -Gn {shlex.quote(user)})\"; stat -c '%a|%U|%G|%n' -- {quoted}"


def untraversable(output: str, user: str) -> list[str]:
    """Directories whose mode keeps `user` out (no x bit that applies to it), from traverse_command's output."""
    lines = output.splitlines()
    groups = set(lines[0].partition("=")[2].split()) if lines and lines[0].startswith("groups=") else set()
    blocked = []
    for line in lines[1:]:
        mode, owner, group, path = line.split("|", 3)
        bits = int(mode, 8)
        if owner == user:
            ok = bits & 0o100
        elif group in groups:
            ok = bits & 0o010
        else:
            ok = bits & 0o001
        if not ok:
            blocked.append(path)
    return blocked


def access_command(user: str, checks: list[tuple[str, str]]) -> str:
    """Prints `ok|no <test> <path>` for each (test, path), tested as `user` (run it as root)."""
    lines = [f"if runuser -u {shlex.quote(user)} -- test {test} {shlex.quote(path)}; then echo 'ok {test} '{shlex.quote(path)}; "
             f"else echo 'no {test} '{shlex.quote(path)}; fi" for test, path in checks]
    return "; ".join(lines)


def parse_access(output: str) -> list[tuple[str, str]]:
    """(test, path) pairs that failed."""
    failed = []
    for line in output.splitlines():
        verdict, _, rest = line.partition(" ")
        test, _, path = rest.partition(" ")
        if verdict == "no":
            failed.append((test, path))
    return failed


def bad_modes_command(tree: str, dir_mode: int = 0o755, file_mode: int = 0o644) -> str:
    """Lists what in `tree` lacks the served modes (directories, files), one path per line."""
    q = shlex.quote(tree)
    return (f"find {q} \\( -type d ! -perm {dir_mode:04o} -printf 'd %p\\n' \\) "
            f"-o \\( -type f ! -perm {file_mode:04o} -printf 'f %p\\n' \\)")


def installed_packages_command(packages: list[str]) -> str:
    return "dpkg-query -W -f='${Package} ${db:Status-Abbrev}\\n' " + " ".join(shlex.quote(p) for p in packages) + \
        " 2>/dev/null"


def parse_installed_packages(output: str) -> set[str]:
    """From installed_packages_command: the packages dpkg has installed (status ii), architecture suffix dropped."""
    found = set()
    for line in output.splitlines():
        name, _, status = line.partition(" ")
        if status.startswith("ii"):
            found.add(name.split(":")[0])
    return found


# The software the tool relies on, asked of each program itself (not of a package manager: names and versions of
# packages differ between distributions). Each line is `name=<the program's own version output>`.
SOFTWARE = (("nginx", "nginx -v"), ("python3", "python3 --version"), ("systemd", "systemctl --version"),
            ("OpenSSH", "ssh -V"), ("certbot", "certbot --version"), ("sqlite3", "sqlite3 --version"))
SOFTWARE_COMMAND = "; ".join(
    [". /etc/os-release 2>/dev/null; echo \"os=${PRETTY_NAME:-unknown}\""]
    + [f"echo \"{name}=$({command} 2>&1 | head -n 1)\"" for name, command in SOFTWARE])
# the first version-like word after the program's name: nginx/1.26.3, Python 3.13.5, systemd 257 (257.9-1),
# OpenSSH_10.0p2, certbot 4.0.0; sqlite3 prints its version first
_VERSION = re.compile(r"(?:^|[\s/_])v?(\d+(?:\.\d+)*(?:p\d+)?)\b")


@dataclass(frozen=True)
class Software:
    os: str
    versions: dict[str, Optional[str]]   # by SOFTWARE name; None when the program is missing

    def describe(self) -> str:
        return f"{self.os}: " + ", ".join(f"{name} {version or 'missing'}" for name, version in self.versions.items())


def parse_software(output: str) -> Software:
    """From SOFTWARE_COMMAND: the OS's PRETTY_NAME and each program's version (None when it did not answer with
    one, e.g. `command not found`)."""
    values = parse_key_values(output)
    versions = {}
    for name, _ in SOFTWARE:
        text = values.get(name, "")
        match = None if "not found" in text else _VERSION.search(text)
        versions[name] = match.group(1) if match else None
    return Software(values.get("os") or "unknown", versions)


# -- a backend instance ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InstanceState:
    active: str              # systemctl is-active: active, activating, failed, inactive, ...
    workers: frozenset       # PIDs of uvicorn's worker processes
    health: str              # the HTTP status its socket answered the health path with ('' for none)


def instance_state_command(unit: str, socket: str, health_path: str) -> str:
    """One round trip: the instance's state, its workers (children of the main process started by multiprocessing)
    and the health endpoint's status asked on its own socket (as root: the socket is root's and nginx's)."""
    u, url = shlex.quote(f"{unit}.service"), shlex.quote(f"http://127.0.0.1{health_path}")
    return (f"echo active=$(systemctl is-active {u}); main=$(systemctl show -p MainPID --value {u}); "
            "echo workers=$([ \"${main:-0}\" != 0 ] && pgrep -P \"$main\" -f multiprocessing-fork | tr '\\n' ' '); "
            f"echo health=$(curl -s --noproxy '*' -o /dev/null -w '%{{http_code}}' --max-time 5 "
            f"--unix-socket {shlex.quote(socket)} -H 'Host: 127.0.0.1' {url})")


def parse_instance_state(output: str) -> InstanceState:
    found = parse_key_values(output)
    health = found.get("health", "")
    return InstanceState(found.get("active", "unknown"), frozenset(found.get("workers", "").split()),
                         "" if health in ("", "000") else health)


def instances_command(unit: str) -> str:
    """The loaded instances of template `unit` (services and sockets), whatever their state."""
    return f"systemctl list-units --plain --no-legend --full --all {shlex.quote(unit + '@*')}"


# states in which an instance holds memory or a socket (a failed or dead one holds neither)
LIVE_STATES = {"active", "activating", "deactivating", "reloading", "refreshing"}


def parse_live_instances(output: str, unit: str) -> set[str]:
    """The releases whose instance of `unit` (service or socket) is live, from `instances_command`'s output:
    `UNIT LOAD ACTIVE SUB DESCRIPTION...` a line."""
    live = set()
    for line in output.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0].startswith(unit + "@") and fields[2] in LIVE_STATES:
            live.add(fields[0][len(unit) + 1:].rsplit(".", 1)[0])
    return live


def started_after_command(unit: str, path: str) -> str:
    """Whether the unit's main process started after `path` last changed (then it read that file's content):
    `after`, `before`, or `unknown` (not running, no such file)."""
    u, q = shlex.quote(f"{unit}.service"), shlex.quote(path)
    return (f"t=$(systemctl show -p ExecMainStartTimestamp --value {u}); s=$(date -d \"$t\" +%s 2>/dev/null); "
            f"m=$(stat -c %Y {q} 2>/dev/null); if [ -z \"$s\" ] || [ -z \"$m\" ]; then echo unknown; "
            "elif [ \"$m\" -lt \"$s\" ]; then echo after; else echo before; fi")


def parse_started_after(output: str) -> Optional[bool]:
    word = output.strip()
    return True if word == "after" else False if word == "before" else None
