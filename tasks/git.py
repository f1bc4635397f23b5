"""The server's clone (guide section 5, daily update: `git pull` by hand on the server).

The clone is where releases come from (git archive of the deployed commit), never what runs. Fast-forward only,
and never over local edits: a dirty tree or diverged history is refused with what is there and how to proceed.
"""
import shlex

from invoke import Collection, task

from .core import clone
from .core.clone import last_error
from .core.errors import UserError
from .core.runtime import host_of, settings_of
from .server import exclude_tool_paths
from .lock import locked


def head(host, s) -> str:
    """The commit the clone is at ('' before the first pull)."""
    return clone.parse_commit(host.probe(clone.head_command(s.app_root)).stdout)


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
    root, target = s.app_root, ref or s.branch
    if not host.probe(clone.is_clone_command(root)).ok:
        host.ensure_dir(root, 0o755)
        host.run(clone.init_command(root, s.branch, repo))
        host.say(f"new clone of {repo} in {root}")
    elif host.probe(clone.origin_command(root)).stdout.strip() != repo:
        host.run(clone.set_origin_command(root, repo))
        host.say(f"origin is now {repo} (from the settings)")
    if not host.dry:
        exclude_tool_paths(host, s)
    found = clone.parse_status(host.probe(clone.status_command(root)).stdout, clone.generated_patterns(s),
                               clone.database_path(s))
    if found.edits:
        shown = ", ".join(found.edits[:3]) + (f" and {len(found.edits) - 3} more" if len(found.edits) > 3 else "")
        stash = "stash -u" if not found.database else f"stash -u -- {' '.join(map(shlex.quote, found.edits))}"
        raise UserError(f"[{host.name}] the clone in {root} has local changes ({shown}): put them in the "
                        f"repository, or discard them with `git -C {root} {stash}`, then run git-pull again")
    previous = head(host, s)
    if host.dry:
        tip = clone.parse_commit(host.probe(clone.ls_remote_command(root, target)).stdout)
        host.say(f"would fetch {target} ({tip[:7] or 'not found'}) and fast-forward from "
                 f"{previous[:7] or 'nothing'} to {(commit or tip or '?')[:7]}")
        return None
    fetched = host.run(clone.fetch_command(root, target), warn=True, timeout=host.long_timeout)   # a first clone
    if fetched.failed:
        raise UserError(f"[{host.name}] cannot fetch {target} from {repo}: {last_error(fetched.stderr)}")
    new = clone.parse_commit(host.probe(clone.resolve_command(root, "FETCH_HEAD")).stdout)
    if commit and commit != new:
        if not host.probe(clone.is_ancestor_command(root, commit, new)).ok:
            raise UserError(f"[{host.name}] commit {commit[:7]} is not on {target} of {repo}: push it first")
        new = clone.parse_commit(host.probe(clone.resolve_command(root, commit)).stdout)
    if previous == new:
        host.say(f"already at {new[:7]} ({target})")
        return None
    if previous and not host.probe(clone.is_ancestor_command(root, previous, new)).ok:
        raise UserError(f"[{host.name}] {target} ({new[:7]}) does not contain the server's commit {previous[:7]}: "
                        f"history was rewritten or the server has commits of its own; to take {target} anyway: "
                        f"git -C {root} reset --keep {new[:12]}")
    if found.generated:
        host.run(clone.put_back_command(root, found.generated))
        host.say(f"put back {len(found.generated)} tracked file(s) the server generated ({found.generated[0]}, ...)")
    moved = host.run(clone.move_command(root, previous, new, s.branch), warn=True)
    if moved.failed:
        raise UserError(f"[{host.name}] git could not move to {new[:7]}: {last_error(moved.stderr)}")
    count = host.probe(clone.count_command(root, previous, new)).stdout.strip() if previous else "all"
    host.say(f"{previous[:7] or 'empty'} -> {new[:7]} ({count} commits from {target})")
    return f"commit {previous[:7] or 'none'} -> {new[:7]}"


ns = Collection(git_pull)
