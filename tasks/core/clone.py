"""The server's git clone as a fact: `git status` parsed into the edits that block a pull, the files the server
itself generates there, and the live database when git tracks it. Pure: tests feed recorded output."""
from __future__ import annotations

import fnmatch
import posixpath
from dataclasses import dataclass, field


def generated_patterns(s) -> list[str]:
    """What the server writes into the clone by itself: Python's bytecode and collectstatic's output. Never an
    edit of the team's: git-pull puts tracked ones back and keeps untracked ones out of `git status`."""
    return ["*.pyc", "__pycache__/", f"/{posixpath.join(s.backend.dir, s.backend.static_dir)}/"]


def database_path(s) -> str:
    """The live SQLite file, relative to the clone."""
    return posixpath.join(s.backend.dir, s.backend.database)


def matches(path: str, pattern: str) -> bool:
    """gitignore-like: `/a/b/` anchored directory, `name/` a directory anywhere, else a file name glob."""
    if pattern.startswith("/"):
        return (path + "/").startswith(pattern[1:])
    if pattern.endswith("/"):
        return pattern[:-1] in path.split("/")[:-1]
    return fnmatch.fnmatch(posixpath.basename(path), pattern)


@dataclass
class CloneStatus:
    edits: list[str] = field(default_factory=list)       # the team's or someone's hand: a pull must not run over
    generated: list[str] = field(default_factory=list)   # tracked files the server rewrote: safe to put back
    database: bool = False                               # the live database shows as changed (git tracks it)


def parse_status(porcelain: str, generated: list[str], database: str) -> CloneStatus:
    """`git status --porcelain` (v1) output, sorted into what blocks a pull and what the tool may put back."""
    status = CloneStatus()
    for line in porcelain.splitlines():
        if len(line) < 4:
            continue
        path = line[3:].split(" -> ")[-1].strip('"')
        if path == database:
            status.database = True
        elif any(matches(path, p) for p in generated):
            if line[:2] != "??":   # untracked ones are the server's own business
                status.generated.append(path)
        else:
            status.edits.append(path)
    return status
