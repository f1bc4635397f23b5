"""Frontend releases, planned locally: ids, what to send and what the server can reuse."""
from __future__ import annotations

import base64
import hashlib
import json
import zlib
from datetime import datetime
from pathlib import Path
from typing import Optional



def local_export(s) -> Path:
    """The static export here, where `build` writes it and uploads read it."""
    return s.local_path(s.app_dir) / s.frontend.dir / s.frontend.out


def release_id(now: datetime, git_sha: str, dirty: bool) -> str:
    """Sortable by time, traceable to the commit: 20261128-213000-abc1234[-dirty]."""
    return f"{now:%Y%m%d-%H%M%S}-{git_sha[:7] or 'nogit'}{'-dirty' if dirty else ''}"


def plan_upload(local: dict, current: Optional[dict], damaged: tuple = ()) -> tuple[dict, list[str]]:
    """(changed, removed): entries the server lacks or holds damaged (sent with their files), and paths it must
    drop. All else it hard-links from the current release, so only the difference travels, manifest included."""
    current = current or {}
    changed = {rel: entry for rel, entry in sorted(local.items())
               if list(current.get(rel) or []) != list(entry) or rel in damaged}
    removed = sorted(set(current) - set(local))
    return changed, removed


def to_resend(damage: dict, local: dict, current: Optional[dict]) -> list[str]:
    """The served release's export files that are missing or differ from its manifest (`damage`, as the release
    agent reports it) and that the new export keeps as they were: sent again, since a link would share the
    damaged inode (or fail on a missing one)."""
    current = current or {}
    return sorted(rel for kind, rel in damage.get("export", []) if kind in ("missing", "differs") and rel in local
                  and list(local[rel]) == list(current.get(rel) or []))


def damage_summary(row: dict, front: str, limit: int = 3) -> str:
    """What is wrong in one release, one line ('' when sound): `2 files: differs frontend/out/index.html, missing
    backend/app.py`; export paths shown from the release's root, as the backend's are."""
    damage = row.get("damage") or {}
    found = [(kind, f"{front}/{rel}") for kind, rel in damage.get("export", [])] + \
            [(kind, rel) for kind, rel in damage.get("backend", [])]
    if not found:
        return ""
    shown = ", ".join(f"{kind} {path}" for kind, path in found[:limit])
    return f"{count(len(found), 'file')}: {shown}" + (f" and {len(found) - limit} more" if len(found) > limit else "")


def verify_report(rows: list[dict], front: str) -> list[str]:
    """`releases --verify`: one line per damaged release (the served one marked)."""
    return [f"{r['id']}{' (served)' if r.get('current') else ''}: damaged, {summary}"
            for r in rows for summary in [damage_summary(r, front)] if summary]


def manifest_digest(manifest: dict) -> str:
    """What the server's rebuilt manifest must hash to (the agent computes the same, standard library only)."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def decode_manifest(row: dict) -> Optional[dict]:
    packed = row.get("manifest_gz")
    return json.loads(zlib.decompress(base64.b64decode(packed))) if packed else None


def count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
