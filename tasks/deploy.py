"""The daily update and its undo (guide: "daily update", done there with a .bat, a .sh and a server script).

`deploy`: preflight (secrets, a clean tree, the commit on the remote, the server, the lock), then build, env,
upload, git-pull, deps, migrate (backup first), collectstatic, service, restart, nginx-reload and the smoke
checks, a history entry and a summary. When a step fails after the frontend switched, the server is put back on
what it served before, by itself. `--plan` (or fab --dry) changes nothing and shows every step's plan.

Several hosts (`fab -H a,b deploy`) are deployed one after another with one build. When a host fails, it is
put back, and so is every host this run had already switched: the set never stays half on the new version.
"""
from __future__ import annotations

import contextlib

from invoke import Collection, task

from . import backend, backups, envfile, git, nginx, release, secrets_check, service
from .chain import Run, build_once, local_commit, migrate_step, put_back, required_secrets, restart_if_needed, \
    run_chain, server_state, smoke_step
from .core import deploy_records as records
from .core.errors import UserError
from .core.local_files import local_git
from .core.runtime import host_of, settings_of
from .history import read_history
from .lock import take

# Hosts this process switched, in order: (context, host, settings, state before). With several hosts, a later
# failure puts these back too.
_switched: list = []


def show_commits(s, host, sha: str) -> None:
    """Under a plan: the commits the server would get, and the migrations among their files."""
    previous = git.head(host, s)
    repo = secrets_check.repo_of(s, None)
    if not previous or previous == sha:
        host.say(f"backend: {'already at' if previous else 'first clone of'} {sha[:7]}")
        return
    log = local_git(repo, "log", "--oneline", "--end-of-options", f"{previous}..{sha}").stdout.splitlines()
    host.say(f"backend: {previous[:7]} -> {sha[:7]}, {len(log)} commit(s):")
    for line in log[:20]:
        host.say(f"  {line}")
    added = local_git(repo, "diff", "--name-only", "--diff-filter=A", "--end-of-options", previous, sha, "--",
                              "*/migrations/0*.py").stdout.split()
    host.say("new migrations: " + (", ".join(added) if added else "none"))


def put_back_earlier_hosts() -> list[str]:
    """After a failure on one host, put back every host this run switched before it, newest first."""
    notes = []
    while _switched:
        c, host, s, before = _switched.pop()
        run = Run(c, host, s, "rollback")
        try:
            run.lock = take(host, s, "rollback")
            run.step("put back", put_back, c, host, s, before)
            run.finish("ok")
            notes.append(f"{host.name} put back")
        except UserError as failure:
            notes.append(f"{host.name} NOT put back ({failure.reason})")
            with contextlib.suppress(UserError):   # record it and free the lock if the server still answers
                run.finish("failed")
    return notes


@task(help={"push": "push HEAD to the remote the server pulls from first (qms.git_remote)",
            "wait": "wait up to this many seconds for another deploy's lock instead of failing at once",
            "plan": "change nothing: print every step, the diffs of rendered files, the commits and migrations, "
                    "and the files an upload would send (the same as fab --dry deploy)"})
def deploy(c, push=False, plan=False, wait=0):
    """Deploy the current commit: build, ship, restart, check.

    The daily update: preflight, build once, upload, git-pull, deps, migrate (after a backup), collectstatic,
    restart, nginx-reload, smoke checks; rolls back by itself when a step after the switch fails.
    """
    if plan:
        c.config.run.dry = True
    s = settings_of(c)
    try:
        deploy_host(c, s, push, float(wait))
    except UserError as failure:
        if _switched:
            raise UserError(f"{failure.reason}; hosts switched before it: "
                            f"{'; '.join(put_back_earlier_hosts())}") from None
        raise


def deploy_host(c, s, push: bool, wait: float) -> None:
    required_secrets(s)
    sha = local_commit(s, push, c.config.run.dry)
    host = host_of(c, s)
    if host.stat(f"{s.app_root}/.deploy") is None:
        raise UserError(f"[{host.name}] {s.app_root} is not set up: run setup first")
    run = Run(c, host, s, "deploy")
    run.lock = take(host, s, "deploy", wait)
    before = server_state(host, s)
    run.outcome.before = before
    if host.dry:
        show_commits(s, host, sha)
    steps = [("build", build_once, s, sha), ("env", envfile.env, c), ("upload", release.upload, c),
             ("git-pull", git.git_pull, c, None, sha), ("deps", backend.deps, c),
             ("app-settings", backend.app_settings_step, host, s), ("migrate", migrate_step, c, host, s, run),
             ("collectstatic", backend.collectstatic, c),
             ("service", service.service, c), ("restart", restart_if_needed, c, host, s, run),
             ("nginx-reload", nginx.nginx_reload, c), ("smoke", smoke_step, host, s)]
    run_chain(run, steps, switch_at="upload", before=before)
    if not host.dry:
        _switched.append((c, host, s, before))


@task(help={"to": "a deploy id or frontend release id from `history` (default: the deploy before the current one)",
            "restore_db": "also restore the database backup taken before the migrations that came after it "
                          "(data written since is lost)"})
def rollback(c, to=None, restore_db=False):
    """Go back to an earlier deploy (frontend and backend).

    Serve an earlier deploy again (its frontend release, backend commit, dependencies), restarted and checked. The
    database stays as it is unless --restore-db.
    """
    s = settings_of(c)
    host = host_of(c, s)
    entries = read_history(host, s)
    current, target = records.rollback_target(entries, to)
    backup = records.backup_before(entries, target) if restore_db else ""
    if restore_db and not backup:
        raise UserError(f"no migrations ran since {target['id']}, so there is no backup to restore: roll back "
                        "without --restore-db")
    run = Run(c, host, s, "rollback")
    run.lock = take(host, s, "rollback")
    run.outcome.before = server_state(host, s)
    wanted = target["after"]
    host.say(f"rolling back to {target['id']}: release {wanted.get('release')}, commit "
             f"{records.short(wanted.get('commit'))} (from {current['id']})")
    if host.dry:
        host.say("would put back that release and commit" + (f", and restore backup {backup}" if backup else ""))
        run.finish("planned")
        return
    steps = [("put back", put_back, c, host, s, wanted)]
    if backup:
        host.say(f"warning: restoring the database to backup {backup}: what was written since is lost (the current "
                 "database is backed up first)")
        steps.append(("restore-db", backups.restore, c, backup))
        run.outcome.backup = backup
    run_chain(run, steps, switch_at="put back", before=run.outcome.before)


ns = Collection(deploy, rollback)
