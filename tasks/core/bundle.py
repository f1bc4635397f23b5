"""The static export as a bundle: its manifest, its build-info.json, and the checks that refuse a bad one.

Next.js inlines NEXT_PUBLIC_* at build time (guide section 7): a bundle built with the wrong or no API URL still
builds fine and only fails in the browser. So every export is scanned before it may leave the machine.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

BUILD_INFO = "build-info.json"
SCANNED_SUFFIXES = (".js", ".html", ".txt", ".json", ".css", ".map")
# An API base the browser of a visitor can never reach, or one that was never set.
BAD_API = re.compile(rb"https?://(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\])(?::\d+)?[^\s\"'`<>)]*|undefined/[\w./-]*")


@dataclass(frozen=True)
class BundleProblem:
    path: str
    text: str

    def __str__(self) -> str:
        return f"{self.path} contains {self.text!r}"


def export_files(root: Path) -> list[str]:
    """Every file of the export as a POSIX relative path, sorted; build-info.json itself left out."""
    files = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            rel = Path(dirpath, name).relative_to(root).as_posix()
            if rel != BUILD_INFO:
                files.append(rel)
    return sorted(files)


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest(root: Path) -> dict[str, list]:
    """path -> [sha256, size] for every file of the export."""
    return {rel: [file_digest(root / rel), (root / rel).stat().st_size] for rel in export_files(root)}


def scan(root: Path, api_url: str) -> list[BundleProblem]:
    """Problems that would break the site in a visitor's browser: a local or undefined API, or the
    configured API URL missing from the whole bundle."""
    problems: list[BundleProblem] = []
    found_api = False
    wanted = api_url.encode()
    for rel in export_files(root):
        if not rel.endswith(SCANNED_SUFFIXES):
            continue
        data = (root / rel).read_bytes()
        found_api = found_api or wanted in data
        match = BAD_API.search(data)
        if match:
            problems.append(BundleProblem(rel, match.group(0).decode(errors="replace")))
    if not found_api:
        problems.append(BundleProblem("the bundle", f"no {api_url} anywhere"))
    return problems


def build_info(root: Path, *, env: str, api_url: str, git_sha: str, dirty: bool, built_at: str) -> dict:
    return {"env": env, "api_url": api_url, "git_sha": git_sha, "dirty": dirty, "built_at": built_at,
            "manifest": manifest(root)}


def write_build_info(root: Path, info: dict) -> None:
    (root / BUILD_INFO).write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")


def read_build_info(root: Path) -> Optional[dict]:
    try:
        return json.loads((root / BUILD_INFO).read_text())
    except (OSError, ValueError):
        return None


def environment_mismatch(info: Optional[dict], env: str) -> Optional[str]:
    """Why an export may not be uploaded to `env`, or None."""
    if info is None:
        return f"the export has no {BUILD_INFO}: build it with `build` first"
    if info.get("env") != env:
        return (f"the export was built for {info.get('env')!r}, not {env!r} (its API URL is {info.get('api_url')}): "
                f"run `fab -f conf/{env}.yaml build` first")
    return None
