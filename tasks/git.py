"""The server's clone (guide section 5, daily update: `git pull` by hand on the server).

The clone is where releases come from (git archive of the deployed commit), never what runs. Fast-forward only,
and never over local edits: a dirty tree or diverged history is refused with what is there and how to proceed.
"""
import posixpath
import shlex

from invoke import Collection, task

from .core import clone
from .core.errors import UserError
from .core.runtime import host_of, settings_of
from .server import exclude_tool_paths
from .lock import locked


def git(s, args: str) -> str:
    return f"git -C {shlex.quote(s.app_root)} {args}"


def head(host, s) -> str:
    result = host.probe(git(s, "rev-parse -q --verify HEAD"))
    return result.stdout.strip() if result.ok else ""


@task(help={"ref": "branch, tag or commit to fetch (default: the setting qms.branch)",
            "commit": "the exact commit to go to, which must be in what was fetched (default: its tip)"})
@locked()
def git_pull(c, ref=None, commit=None):
    """Fast-forward the server's clone; refuse local edits.

    Fetch and fast-forward the server's clone (cloning it the first time); refuse local edits or diverged history.
    The clone never runs: deploy makes a release from it.
    """
    s = settings_of(c)
    return pull(host_of(c, s), s, ref, commit)


def pull(host, s, ref=None, commit=None):
    """The clone at `commit` (default: the tip of `ref`, default qms.branch), fast-forward only."""
    repo = s.require("repo", "git-pull")
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
    if found.generated:
        host.run(git(s, "checkout -q -- " + " ".join(map(shlex.quote, found.generated))))
        host.say(f"put back {len(found.generated)} tracked file(s) the server generated ({found.generated[0]}, ...)")
    switch = f"merge -q --ff-only {new}" if previous else f"checkout -q -B {shlex.quote(s.branch)} {new}"
    moved = host.run(git(s, switch), warn=True)
    if moved.failed:
        raise UserError(f"[{host.name}] git could not move to {new[:7]}: "
                        f"{(moved.stderr.strip().splitlines() or ['no output'])[-1]}")
    count = host.probe(git(s, f"rev-list --count {previous}..{new}")).stdout.strip() if previous else "all"
    host.say(f"{previous[:7] or 'empty'} -> {new[:7]} ({count} commits from {target})")
    return f"commit {previous[:7] or 'none'} -> {new[:7]}"


ns = Collection(git_pull)
