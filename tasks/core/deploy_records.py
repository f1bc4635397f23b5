"""What the chains write down and read back, planned without a server: the lock's owner, history entries, the
rollback target and the end-of-run summary. The server keeps the history as JSON lines in .deploy/history.jsonl."""
from __future__ import annotations

import json
import re
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
        return "an unknown deploy (the lock has no owner file)"
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


def state_of(entry: dict) -> tuple:
    return entry.get("after", {}).get("release"), entry.get("after", {}).get("commit")


def rollback_target(entries: list[dict], to: Optional[str]) -> tuple[dict, dict]:
    """(current, target): the last run that left the server in a known state, and the completed deploy (or setup) to
    go back to: `to` (a history id or a frontend release id), else the one before the deploy that is served now.
    Rolling back twice goes back twice, as with Capistrano's releases."""
    known = [e for e in entries if e.get("result") in ("ok", "rolled back") and e.get("after", {}).get("commit")]
    deploys = [e for e in known if e.get("result") == "ok" and e.get("action") in ("setup", "deploy")]
    if not deploys:
        raise UserError("the deploy history has no completed deploy to go back to: `history` shows it")
    current = known[-1]
    if to:
        target = next((e for e in reversed(deploys) if to in (e["id"], e["after"].get("release"))), None)
        if target is None:
            raise UserError(f"{to} is neither a deploy id nor a release of a completed deploy: `history` lists them")
    else:
        served = [i for i, e in enumerate(deploys) if state_of(e) == state_of(current)]
        earlier = deploys[:served[-1]] if served else deploys
        target = next((e for e in reversed(earlier) if state_of(e) != state_of(current)), None)
        if target is None:
            raise UserError("there is no earlier deploy that served something else: nothing to roll back to")
    if state_of(target) == state_of(current):
        raise UserError(f"{target['id']} is what the server runs now: nothing to roll back")
    commit = target["after"]["commit"]
    if not (isinstance(commit, str) and re.fullmatch(r"[0-9a-f]+", commit)):   # it reaches git reset on the server
        raise UserError(f"{target['id']} in the deploy history names {commit!r}, not a commit id: the history file "
                        "is damaged; roll back --to another entry (`history` lists them)")
    return current, target


def backup_before(entries: list[dict], target: dict) -> str:
    """The database backup taken before the first migrations after `target`: the database as it was then."""
    later = entries[[e["id"] for e in entries].index(target["id"]) + 1:]
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
