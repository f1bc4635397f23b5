"""The server's git clone, as data: the git commands that read and move it, and pure parsers of their output
(`git status` sorted into the edits that block a pull, the files the server itself generates there, and the live
database when git tracks it). tasks/git.py decides; tests feed recorded output.

Every ref and commit reaches git quoted and after `--end-of-options` (or as an argument git never reads as an
option), so a ref or a commit read from the server's history cannot become an option."""
from __future__ import annotations

import fnmatch
import posixpath
import re
import shlex
from dataclasses import dataclass, field

_SHA = re.compile(r"^[0-9a-f]{40}$")


def git(root: str, args: str) -> str:
    """The one way the tool runs git on the server: in the clone at `root`."""
    return f"git -C {shlex.quote(root)} {args}"


def is_clone_command(root: str) -> str:
    return f"test -d {shlex.quote(posixpath.join(root, '.git'))}"


def init_command(root: str, branch: str, repo: str) -> str:
    return (git(root, f"init -q -b {shlex.quote(branch)}") + " && "
            + git(root, f"remote add origin -- {shlex.quote(repo)}"))


def origin_command(root: str) -> str:
    return git(root, "remote get-url origin")


def set_origin_command(root: str, repo: str) -> str:
    return git(root, f"remote set-url origin -- {shlex.quote(repo)}")


def status_command(root: str) -> str:
    # --no-optional-locks: status would otherwise rewrite the index, and a dry run must change nothing
    return git(root, "--no-optional-locks status --porcelain --untracked-files=normal")


def head_command(root: str) -> str:
    return git(root, "rev-parse -q --verify HEAD")


def resolve_command(root: str, rev: str) -> str:
    """The full commit `rev` names (FETCH_HEAD, a branch, a short sha)."""
    return git(root, f"rev-parse -q --verify --end-of-options {shlex.quote(rev + '^{commit}')}")


def parse_commit(output: str) -> str:
    """A full sha from rev-parse or ls-remote output; '' when there is none (no commits, unknown ref)."""
    first = output.split()[:1]
    return first[0] if first and _SHA.match(first[0]) else ""


def ls_remote_command(root: str, ref: str) -> str:
    return git(root, f"ls-remote origin -- {shlex.quote(ref)}")


def fetch_command(root: str, ref: str) -> str:
    return git(root, f"fetch -q --end-of-options origin {shlex.quote(ref)}")


def is_ancestor_command(root: str, older: str, newer: str) -> str:
    """Succeeds when `newer` contains `older` (a fast-forward from it)."""
    return git(root, f"merge-base --is-ancestor --end-of-options {shlex.quote(older)} {shlex.quote(newer)}")


def put_back_command(root: str, paths: list[str]) -> str:
    return git(root, "checkout -q -- " + " ".join(map(shlex.quote, paths)))


def move_command(root: str, previous: str, new: str, branch: str) -> str:
    """Fast-forward to `new`; the first time, the branch is made at it."""
    if previous:
        return git(root, f"merge -q --ff-only {shlex.quote(new)}")
    return git(root, f"checkout -q -B {shlex.quote(branch)} {shlex.quote(new)}")


def count_command(root: str, previous: str, new: str) -> str:
    return git(root, f"rev-list --count {shlex.quote(previous + '..' + new)}")


def archive_command(root: str, sha: str, paths: list[str], into: str) -> str:
    """The files of `paths` at commit `sha`, unpacked into `into` (git archive: no .git, nothing generated)."""
    return (git(root, f"archive --format=tar {shlex.quote(sha)} -- " + " ".join(map(shlex.quote, paths)))
            + f" | tar -x -C {shlex.quote(into)}")


def last_error(stderr: str) -> str:
    return (stderr.strip().splitlines() or ["no output"])[-1]



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
