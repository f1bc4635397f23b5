"""The server's clone (guide section 5, daily update: `git pull` by hand on the server).

Fast-forward only, and never over local edits: a dirty tree or diverged history is refused with what is there and
how to proceed. Previous and new commit are recorded in .deploy/git.json for rollback.
"""
import json
import posixpath
import shlex
from datetime import datetime, timezone

from invoke import Collection, task

from .core import clone
from .core.errors import UserError
from .core.runtime import host_of, settings_of
from .server import exclude_tool_paths


def git(s, args: str) -> str:
    return f"git -C {shlex.quote(s.app_root)} {args}"


def head(host, s) -> str:
    result = host.probe(git(s, "rev-parse -q --verify HEAD"))
    return result.stdout.strip() if result.ok else ""


@task(help={"ref": "branch, tag or commit to fetch (default: the setting qms.branch)",
            "commit": "the exact commit to go to, which must be in what was fetched (default: its tip)"})
def git_pull(c, ref=None, commit=None):
    """Fast-forward the server's clone; refuse local edits.

    Fetch and fast-forward the server's clone (cloning it the first time); refuse local edits or diverged history.
    """
    s = settings_of(c)
    repo = s.require("repo", "git-pull")
    host = host_of(c, s)
    target = ref or s.branch
    if not host.probe(f"test -d {shlex.quote(posixpath.join(s.app_root, '.git'))}").ok:
        host.ensure_dir(s.app_root, 0o755)
        host.run(git(s, f"init -q -b {shlex.quote(s.branch)} && ") + git(s, f"remote add origin {shlex.quote(repo)}"))
        host.say(f"new clone of {repo} in {s.app_root}")
    elif host.probe(git(s, "remote get-url origin")).stdout.strip() != repo:
        host.run(git(s, f"remote set-url origin {shlex.quote(repo)}"))
        host.say(f"origin is now {repo} (from the settings)")
    if not host.dry:
        exclude_tool_paths(host, s)
    # --no-optional-locks: status would otherwise rewrite the index, and a dry run must change nothing
    found = clone.parse_status(host.probe(git(s, "--no-optional-locks status --porcelain --untracked-files=normal"))
                               .stdout, clone.generated_patterns(s), clone.database_path(s))
    if found.edits:
        shown = ", ".join(found.edits[:3]) + (f" and {len(found.edits) - 3} more" if len(found.edits) > 3 else "")
        stash = "stash -u" if not found.database else f"stash -u -- {' '.join(map(shlex.quote, found.edits))}"
        raise UserError(f"[{host.name}] the clone in {s.app_root} has local changes ({shown}): put them in the "
                        f"repository, or discard them with `git -C {s.app_root} {stash}`, then run git-pull again")
    previous = head(host, s)
    if host.dry:
        remote = host.probe(git(s, f"ls-remote origin {shlex.quote(target)}")).stdout.split()[:1]
        host.say(f"would fetch {target} ({remote[0][:7] if remote else 'not found'}) and fast-forward from "
                 f"{previous[:7] or 'nothing'} to {(commit or (remote[0] if remote else '?'))[:7]}")
        return None
    fetched = host.run(git(s, f"fetch -q --end-of-options origin {shlex.quote(target)}"), warn=True)
    if fetched.failed:
        raise UserError(f"[{host.name}] cannot fetch {target} from {repo}: "
                        f"{(fetched.stderr.strip().splitlines() or ['no output'])[-1]}")
    new = host.probe(git(s, "rev-parse FETCH_HEAD^{commit}")).stdout.strip()
    if commit and commit != new:
        if not host.probe(git(s, f"merge-base --is-ancestor {shlex.quote(commit)} {new}")).ok:
            raise UserError(f"[{host.name}] commit {commit[:7]} is not on {target} of {repo}: push it first")
        new = host.probe(git(s, f"rev-parse {shlex.quote(commit)}^{{commit}}")).stdout.strip()
    if previous == new:
        host.say(f"already at {new[:7]} ({target})")
        return None
    if previous and not host.probe(git(s, f"merge-base --is-ancestor {previous} {new}")).ok:
        raise UserError(f"[{host.name}] {target} ({new[:7]}) does not contain the server's commit {previous[:7]}: "
                        f"history was rewritten or the server has commits of its own; to take {target} anyway: "
                        f"git -C {s.app_root} reset --keep {new[:12]}")
    database = clone.database_path(s)
    if host.probe(git(s, f"cat-file -e {new}:{shlex.quote(database)}")).ok:
        raise UserError(f"[{host.name}] {database} is in the repository at {new[:7]}: git would put that copy over "
                        f"the live database; take it out of git (git rm --cached {database}, *.sqlite3 in "
                        ".gitignore), commit and push, then deploy again: the server keeps its copy")
    if found.generated:
        host.run(git(s, "checkout -q -- " + " ".join(map(shlex.quote, found.generated))))
        host.say(f"put back {len(found.generated)} tracked file(s) the server generated ({found.generated[0]}, ...)")
    switch = f"merge -q --ff-only {new}" if previous else f"checkout -q -B {shlex.quote(s.branch)} {new}"
    if previous and host.probe(git(s, f"cat-file -e {previous}:{shlex.quote(database)}")).ok:
        # tracked until now, gone from the new commit: a merge would refuse (or delete the live file), so the index
        # and the other files move to the new commit around it
        index = git(s, "write-tree")
        switch = (f"rm -q --cached -- {shlex.quote(database)} && "
                  + git(s, f'read-tree -m -u "$({index})" {new} && ') + git(s, f"reset -q --soft {new}"))
        host.say(f"{database} leaves git; the server keeps the live file")
    moved = host.run(git(s, switch), warn=True)
    if moved.failed:
        raise UserError(f"[{host.name}] git could not move to {new[:7]}: "
                        f"{(moved.stderr.strip().splitlines() or ['no output'])[-1]}")
    record = {"previous": previous, "new": new, "ref": target, "at": datetime.now(timezone.utc).isoformat()}
    host.put(posixpath.join(s.app_root, ".deploy", "git.json"), json.dumps(record) + "\n", 0o640, show_diff=False)
    count = host.probe(git(s, f"rev-list --count {previous}..{new}")).stdout.strip() if previous else "all"
    host.say(f"{previous[:7] or 'empty'} -> {new[:7]} ({count} commits from {target})")
    return f"commit {previous[:7] or 'none'} -> {new[:7]}"


def backend_changed(host, s) -> bool:
    """Whether the last pull changed what the backend runs: manage.py's folder or the Python project's files (a
    commit that only touched the frontend needs no restart). True when the pull is not on record."""
    try:
        record = json.loads(host.read(posixpath.join(s.app_root, ".deploy", "git.json")) or b"{}")
    except ValueError:
        return True
    if not record.get("previous") or not record.get("new"):
        return True
    project = s.backend.python_project or s.backend.dir
    paths = [s.backend.dir] + [posixpath.normpath(posixpath.join(project, name))
                               for name in ("pyproject.toml", "uv.lock", "requirements.txt")]
    return not host.probe(git(s, f"diff --quiet --end-of-options {shlex.quote(record['previous'])} "
                                 f"{shlex.quote(record['new'])} -- "
                                 + " ".join(map(shlex.quote, paths)))).ok


ns = Collection(git_pull)
