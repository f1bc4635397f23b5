"""How much memory this machine gives the tool: the smaller of its RAM and its cgroup's limit (a container, a VPS
slice, the stand-in's 1 GB), read from /proc and /sys. Pure parsers, and one reader of the local files (Linux only:
elsewhere there is nothing to read and no limit is assumed)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

UNLIMITED = 1 << 62   # cgroup v1 writes "no limit" as a huge page-aligned number, v2 as "max"


def parse_meminfo_total(text: str) -> Optional[int]:
    """MemTotal of /proc/meminfo, in bytes."""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def cgroup_dirs(proc_self_cgroup: str, root: Path = Path("/sys/fs/cgroup")) -> list[Path]:
    """This process's memory cgroup and its ancestors (each one's limit applies), v1 or v2, innermost first."""
    for line in proc_self_cgroup.splitlines():
        number, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        base = root / "memory" if "memory" in controllers.split(",") else root if number == "0" else None
        if base is None:
            continue
        parts = [p for p in path.strip().split("/") if p]
        return [base.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]
    return []


def parse_limit(text: str) -> Optional[int]:
    """memory.max (v2) or memory.limit_in_bytes (v1): bytes, None for no limit."""
    value = text.strip()
    if not value.isdigit():
        return None   # "max", or nothing readable
    return int(value) if int(value) < UNLIMITED else None


def usable(total: Optional[int], limits: list[Optional[int]]) -> Optional[int]:
    """What the processes here may use: RAM, capped by every cgroup limit above them."""
    found = [n for n in [total, *limits] if n]
    return min(found) if found else None


def local_usable() -> Optional[int]:
    """This machine's usable memory in bytes, None where /proc is not Linux's (Windows, macOS: no cap known)."""
    try:
        total = parse_meminfo_total(Path("/proc/meminfo").read_text())
        membership = Path("/proc/self/cgroup").read_text()
    except OSError:
        return None
    limits = []
    for directory in cgroup_dirs(membership):
        for name in ("memory.max", "memory.limit_in_bytes"):
            try:
                limits.append(parse_limit((directory / name).read_text()))
            except OSError:
                continue
    return usable(total, limits)
