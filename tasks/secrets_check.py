"""Keep secrets out of git (guide section 10): a check that names every offending file, and a pre-commit hook."""
import stat
import sys
from pathlib import Path

from invoke import Collection, task

from .core.errors import UserError
from .core.local_files import local_git, write_text
from .core.runtime import settings_of
from .core.secret_files import offence, sample_path
from .core.settings import PROJECT_ROOT
from .lock import read_only


def repo_of(s, repo) -> Path:
    start = Path(repo) if repo else s.local_path(s.app_dir)
    top = local_git(start, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise UserError(f"{start} is not inside a git repository: pass --repo or set qms.app_dir")
    return Path(top.stdout.strip())


def problems(s, repo: Path) -> list[str]:
    patterns, allowed = list(s.secrets_check.patterns), list(s.secrets_check.allowed)
    tracked = local_git(repo, "ls-files", "-z").stdout.split("\0")
    staged = local_git(repo, "diff", "--cached", "--name-only", "--diff-filter=AMR", "-z").stdout.split("\0")
    found = []
    for path in sorted({p for p in tracked + staged if p}):
        pattern = offence(path, patterns, allowed)
        if pattern:
            found.append(f"git holds {path} (matches {pattern}): git rm --cached '{path}'")
    for pattern in patterns:
        if local_git(repo, "check-ignore", "-q", "--no-index", sample_path(pattern)).returncode != 0:
            found.append(f".gitignore does not ignore {pattern}: add a line `{pattern}`")
    return found


@task(help={"repo": "the git repository to check (default: the one holding qms.app_dir)"})
@read_only
def check_secrets(c, repo=None):
    """Fail when git holds secrets or .gitignore misses them.

    Checks tracked and staged files against qms.secrets_check.patterns (.env*, *.env, *.pem, *.key, *.crt, ssh keys,
    *.sqlite3 and its compressed copies, journal and WAL files, dumps, *.bak, backups/, null) and asks git itself
    whether .gitignore ignores each pattern."""
    s = settings_of(c)
    top = repo_of(s, repo)
    found = problems(s, top)
    for line in found:
        print(f"check-secrets: {line}")
    if found:
        raise UserError(f"{top}: {len(found)} secret-file problem(s), listed above")
    print(f"check-secrets: {top}: no secrets tracked, and .gitignore covers every pattern")


@task(help={"repo": "the git repository to protect (default: the one holding qms.app_dir)"})
@read_only
def install_hooks(c, repo=None):
    """Install check-secrets as the repo's git pre-commit hook."""
    s = settings_of(c)
    top = repo_of(s, repo)
    hooks = Path(local_git(top, "rev-parse", "--git-path", "hooks").stdout.strip())
    hooks = hooks if hooks.is_absolute() else top / hooks
    hooks.mkdir(parents=True, exist_ok=True)
    hook = hooks / "pre-commit"
    if hook.exists() and "qms-deploy" not in hook.read_text(encoding="utf-8", errors="replace"):
        raise UserError(f"{hook} exists and is not ours: merge `check-secrets` into it by hand")
    # sh runs git hooks on Windows too (Git for Windows); paths are quoted for spaces
    write_text(hook, "#!/bin/sh\n# Installed by qms-deploy (install-hooks): refuse commits that carry secrets.\n"
               f'exec "{Path(sys.executable).as_posix()}" -m invoke -r "{PROJECT_ROOT.as_posix()}" '
               'check-secrets --repo "$(git rev-parse --show-toplevel)"\n')
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    print(f"install-hooks: {hook} runs check-secrets before every commit")


ns = Collection(check_secrets, install_hooks)
