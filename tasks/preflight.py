"""What is checked here, before anything is sent: the commit to ship (clean, free of secrets, on the remote the
server pulls) and the secrets the run will need."""
from __future__ import annotations

from . import secrets_check
from .core import backend_plan as plan
from .core.errors import UserError
from .core.local_files import local_git


def local_commit(s, push: bool, dry: bool) -> str:
    """The commit to deploy: HEAD of the app's checkout, which must be clean, free of secrets, and on the remote
    the server pulls from (pushed there with --push). A deploy ships commits, so that what the server's git runs
    and what was built here are the same code. A plan (`dry`) pushes nothing and says what the deploy would do."""
    repo = secrets_check.repo_of(s, None)
    found = secrets_check.problems(s, repo)
    if found:
        for line in found:
            print(f"check-secrets: {line}")
        raise UserError(f"{repo}: {len(found)} secret-file problem(s), listed above: fix them before deploying")
    dirty = local_git(repo, "status", "--porcelain", "--untracked-files=normal").stdout.splitlines()
    if dirty:
        shown = ", ".join(line[3:] for line in dirty[:3]) + (f" and {len(dirty) - 3} more" if len(dirty) > 3 else "")
        raise UserError(f"{repo} has uncommitted changes ({shown}): commit or stash them; a deploy ships commits")
    sha = local_git(repo, "rev-parse", "HEAD").stdout.strip()
    remote_name, branch = s.git_remote, s.branch
    listed = local_git(repo, "ls-remote", remote_name, f"refs/heads/{branch}")
    if listed.returncode != 0:
        raise UserError(f"cannot read the git remote {remote_name} of {repo}: "
                        f"{(listed.stderr.strip().splitlines() or ['no output'])[-1]} (qms.git_remote names it)")
    tip = (listed.stdout.split() or [""])[0]
    if tip == sha:
        return sha
    behind = bool(tip) and local_git(repo, "merge-base", "--is-ancestor", sha, tip).returncode == 0
    if dry and not behind:
        print(f"would push {sha[:7]} to {remote_name}/{branch}" if push else
              f"note: {sha[:7]} is not on {remote_name}/{branch}: the deploy would refuse it (git push, or deploy "
              "--push)")
        return sha
    if push and not behind:
        pushed = local_git(repo, "push", "-q", remote_name, f"HEAD:refs/heads/{branch}")
        if pushed.returncode != 0:
            raise UserError(f"git push {remote_name} HEAD:{branch} was refused: "
                            f"{(pushed.stderr.strip().splitlines() or ['no output'])[-1]}; pull and merge first")
        print(f"pushed {sha[:7]} to {remote_name}/{branch}")
        return sha
    if behind:
        raise UserError(f"{remote_name}/{branch} ({tip[:7]}) is ahead of your commit {sha[:7]}: pull first, or a "
                        "deploy would take the server back")
    raise UserError(f"commit {sha[:7]} is not on {remote_name}/{branch}, which the server pulls: git push, or "
                    "deploy --push")


def required_secrets(s, superuser: bool = False) -> None:
    """Fail before anything is sent when the server's .env cannot be rendered (SECRET_KEY) or setup would have to
    stop half-way for the superuser's password."""
    plan.render_env(s)
    if superuser and s.setup.superuser and not s.secrets.get("DJANGO_SUPERUSER_PASSWORD"):
        raise UserError(f"DJANGO_SUPERUSER_PASSWORD is missing from {s.secrets_path}: add it, or set "
                        "qms.setup.superuser: '' to create no superuser")
