"""What the chains write down and read back, planned without a server: the lock's owner, history entries, the
rollback target and the end-of-run summary. The server keeps the history as JSON lines in .deploy/history.jsonl."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional

from .errors import UserError


def lock_owner(action: str, user: str, machine: str, pid: int, now: datetime) -> dict:
    return {"action": action, "user": user, "from": machine, "client_pid": pid,
            "since": now.strftime("%Y-%m-%d %H:%M:%S UTC"), "step": "preflight"}


def describe_owner(owner: Optional[dict]) -> str:
    """`deploy by alice from laptop (pid 42) since 2026-11-28 23:10:05 UTC, at step upload`."""
    if not owner:
        return "unknown command (the lock's owner file cannot be read)"
    return (f"{owner.get('action', 'deploy')} by {owner.get('user', '?')} from {owner.get('from', '?')} "
            f"(pid {owner.get('client_pid', '?')}) since {owner.get('since', '?')}, at step {owner.get('step', '?')}")


def entry_id(now: datetime) -> str:
    return f"{now:%Y%m%d-%H%M%S}"


@dataclass
class Step:
    name: str
    seconds: float
    change: Optional[str] = None      # what it changed, None when nothing
    failed: Optional[str] = None


@dataclass
class Outcome:
    """One run of a chain on one host, as the history keeps it."""
    id: str
    action: str
    by: str
    started: str
    before: dict = field(default_factory=dict)    # {"release": ..., "commit": ...}
    after: dict = field(default_factory=dict)
    backup: str = ""
    result: str = "running"
    failed_step: str = ""
    error: str = ""
    steps: list = field(default_factory=list)

    def as_json(self) -> str:
        data = dict(self.__dict__)
        data["steps"] = [[st.name, round(st.seconds, 2), st.change, st.failed] for st in self.steps]
        return json.dumps(data, sort_keys=True)


def parse_history(text: str) -> list[dict]:
    """Entries, oldest first; a line cut short (a full disk, a killed write) is skipped, not fatal."""
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "id" in entry:
            entries.append(entry)
    return entries


def release_before(rows: list[dict]) -> Optional[str]:
    """The release sealed before the served one (`rows` oldest first): where a plain rollback goes."""
    ids = [r["id"] for r in rows]
    served = next((r["id"] for r in rows if r.get("current")), None)
    earlier = ids[:ids.index(served)] if served in ids else ids
    return earlier[-1] if earlier else None


def rollback_target(rows: list[dict], to: Optional[str], entries: list[dict]) -> str:
    """The release to serve again, decided from the releases on the server (`rows`, oldest first, the served one
    marked current), never from what the history says the last run changed: `to` (a release id, or the id of a run
    in the history, meaning the release it left served), else the one sealed before the served one. Rolling back
    twice goes back twice, as with Capistrano's releases."""
    ids = [r["id"] for r in rows]
    served = next((r["id"] for r in rows if r.get("current")), None)
    if to:
        run = next((e for e in entries if e.get("id") == to), None)
        target = (run or {}).get("after", {}).get("release") if to not in ids else to
        if target not in ids:
            raise UserError(f"{to} is neither a release on the server nor a run that left one served (older releases "
                            "are pruned): `releases` lists them")
    else:
        target = release_before(rows)
        if not target:
            raise UserError("the server keeps no release older than the served one: nothing to roll back to "
                            "(`releases` lists them)")
    if target == served:
        raise UserError(f"{target} is what the server serves now: nothing to roll back")
    return target


def nearest_sound(rows: list[dict], target: str) -> list[str]:
    """Kept releases a rollback could serve instead of a damaged `target`, nearest first (an older one before a
    newer one as near): not the served one, none whose damage the listing found."""
    ids = [r["id"] for r in rows]
    at = ids.index(target) if target in ids else len(ids)
    sound = [(abs(i - at), i > at, r["id"]) for i, r in enumerate(rows)
             if r["id"] != target and not r.get("current") and not any((r.get("damage") or {}).values())]
    return [rid for _, _, rid in sorted(sound)]


def backup_before(entries: list[dict], release: str) -> str:
    """The database backup taken before the first migrations after the run that first served `release` (its
    deploy): the database as that release's code knew it ('' when the history has none)."""
    ids = [i for i, e in enumerate(entries) if e.get("after", {}).get("release") == release
           and e.get("result") in ("ok", "rolled back")]
    later = entries[ids[0] + 1:] if ids else []
    return next((e["backup"] for e in later if e.get("backup")), "")


def short(commit: Optional[str]) -> str:
    return (commit or "-")[:7]


def history_row(entry: dict) -> list[str]:
    before, after = entry.get("before", {}), entry.get("after", {})
    moved = lambda key, fmt: (f"{fmt(before.get(key))} -> {fmt(after.get(key))}" if before.get(key) != after.get(key)
                              else fmt(after.get(key)))
    took = sum(step[1] for step in entry.get("steps", []))
    problem = f"{entry.get('failed_step')}: {entry.get('error')}" if entry.get("failed_step") else ""
    return [entry["id"], entry.get("action", "?"), entry.get("result", "?"), entry.get("by", "?"),
            moved("commit", short), moved("release", lambda r: r or "-"), entry.get("backup") or "-",
            f"{took:.0f} s", problem]


HISTORY_COLUMNS = ("id", "action", "result", "by", "commit", "frontend release", "backup", "took", "problem")


def listed(names: list[str], what: str, limit: int = 3) -> str:
    """`what a, b` or, for a long list, `N what (a ... z)`: a summary line stays one line."""
    if len(names) <= limit:
        return f"{what}: {', '.join(names)}"
    return f"{len(names)} {what} ({names[0]} ... {names[-1]})"


def summary_rows(steps: list[Step]) -> list[list[str]]:
    return [[st.name, f"{st.seconds:.1f} s", f"FAILED: {st.failed}" if st.failed else (st.change or "no change")]
            for st in steps]
