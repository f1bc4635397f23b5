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
from typing import Optional, Sequence

from .local_files import read_text, write_text

BUILD_INFO = "build-info.json"
SCANNED_SUFFIXES = (".js", ".html", ".txt", ".json", ".css", ".map")
# An API base the browser of a visitor can never reach, or one that was never set.
# A bare loopback origin (no port, no path) is not one by itself: axios 1.7+ ships `window.location.href||
# "http://localhost"`, the base it resolves URLs against outside a browser (tests/unit/bundles/axios-app), and
# `new URL(x, "http://localhost")` is the common idiom for such a base. A backend a developer calls has a port
# (8000, 3000) or a path (/api), and an app whose API is a bare origin usually lacks the configured API URL, which
# scan() refuses too. So a bare origin counts only where code appends to it: `"...".concat(`, `"..." +` or `${`.
# The rule lives in the pattern because doctor runs the same pattern on the server.
BAD_API = re.compile(rb"https?://(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\])"
                     rb"(?:[:/?#][^\s\"'`<>)]*|(?=[\"'`](?:\s*\+|\.concat\()|\$\{))"
                     rb"|undefined/[\w./-]*")
EXCERPT = 40   # bytes of context shown on either side of a hit

# What a hit looks like it came from (the fix differs).
LITERAL = "looks like a literal in your source"
UNSET = "looks like a NEXT_PUBLIC_* variable that was not set at build time"
CONFIGURED = "is the API URL the build was given"
MISSING = "is missing"


@dataclass(frozen=True)
class BundleProblem:
    path: str
    text: str
    kind: str = LITERAL
    context: str = ""   # the hit with up to EXCERPT bytes either side, one printable line

    def __str__(self) -> str:
        return f"{self.path} has {self.text}" if self.kind == MISSING else f"{self.path} contains {self.text!r}"

    def details(self) -> str:
        if self.kind == MISSING:
            return f"{self.path}: {self.text}"
        return f"{self.path}: {self.text!r} {self.kind}; context: ...{self.context}..."


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


def scan(root: Path, api_url: str, allow: Sequence[str] = ()) -> list[BundleProblem]:
    """Problems that would break the site in a visitor's browser: every local or undefined API address (unless an
    `allow` entry is part of its text or context), and the configured API URL missing from the whole bundle."""
    problems: list[BundleProblem] = []
    found_api = False
    wanted = api_url.encode()
    for rel in export_files(root):
        if not rel.endswith(SCANNED_SUFFIXES):
            continue
        data = (root / rel).read_bytes()
        found_api = found_api or wanted in data
        for match in BAD_API.finditer(data):
            text = match.group(0).decode(errors="replace")
            context = excerpt(data, match.start(), match.end())
            if not allowed(text, context, allow):
                problems.append(BundleProblem(rel, text, kind_of(text, api_url), context))
    if not found_api:
        problems.append(BundleProblem("the bundle", f"no {api_url} anywhere", MISSING))
    return problems


def allowed(text: str, context: str, allow: Sequence[str]) -> bool:
    """A hit the team said is fine (qms.frontend.bundle_allow): an entry is part of its text or its context."""
    return any(entry in text or entry in context for entry in allow)


def kind_of(text: str, api_url: str) -> str:
    if text.startswith("undefined/"):
        return UNSET
    return CONFIGURED if text.startswith(api_url.rstrip("/")) else LITERAL


def excerpt(data: bytes, start: int, end: int) -> str:
    text = data[max(0, start - EXCERPT):end + EXCERPT].decode(errors="replace")
    return "".join(ch if ch.isprintable() else " " for ch in text)


def build_info(root: Path, *, env: str, api_url: str, git_sha: str, dirty: bool, built_at: str) -> dict:
    return {"env": env, "api_url": api_url, "git_sha": git_sha, "dirty": dirty, "built_at": built_at,
            "manifest": manifest(root)}


def write_build_info(root: Path, info: dict) -> None:
    write_text(root / BUILD_INFO, json.dumps(info, indent=1, sort_keys=True) + "\n")


def read_build_info(root: Path) -> Optional[dict]:
    try:
        return json.loads(read_text(root / BUILD_INFO))
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
