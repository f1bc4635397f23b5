"""The daily update and its undo (guide: "daily update", done there with a .bat, a .sh and a server script).

`deploy`: preflight (secrets, a clean tree, the commit on the remote, the server, the lock), then build, and a new
release made beside the served one (env, git-pull, release, deps, upload, app-settings, migrate after a backup,
collectstatic, service, seal), started and checked on its own socket, switched to with one rename, nginx-reload,
smoke checks, the old release stopped; a history entry and a summary. A failure before the switch discards the new
release; after it, the previous release serves again, by itself. `--plan` (or fab --dry) changes nothing and
shows every step's plan. `rollback` serves a kept release again: no git, no uv, no network.

Several hosts (`fab -H a,b deploy`) are deployed one after another with one build. When a host fails, it is
put back, and so is every host this run had already switched: the set never stays half on the new version.
"""
from __future__ import annotations

import contextlib
from datetime import datetime, timezone

from invoke import Collection, task

from . import backups, nginx, release, secrets_check, service
from .build import build_once
from .chain import Run, run_chain
from .preflight import local_commit, required_secrets
from .release import put_back, put_back_after_failure, release_steps, retire_step, server_state
from .smoke import smoke_step
from .core import deploy_records as records
from .core.releases import release_id
from .core.errors import UserError
from .core.local_files import local_git
from .core.runtime import host_of, settings_of
from .history import read_history
from .lock import own_lock, take

# Hosts this process switched, in order: (host, settings, state before). With several hosts, a later failure
# puts these back too.
_switched: list = []


def show_commits(s, host, previous: str, sha: str) -> None:
    """Under a plan: the commits the server would get, and the migrations among their files."""
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
        host, s, before = _switched.pop()
        run = Run(host, s, "rollback", lambda: server_state(host, s))
        try:
            run.lock = take(host, s, "rollback")
            run.step("put back", put_back, host, s, before)
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
@own_lock
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
    if host.stat(f"{s.app_root}/.deploy") is None or not service.served(host, s):
        raise UserError(f"[{host.name}] {s.app_root} serves no release: run setup first")
    ship(host, s, sha, "deploy", wait, build=True)


def ship(host, s, sha: str, action: str, wait: float = 0, build: bool = False) -> None:
    """A new release of commit `sha` with the local export, verified beside the served one, then switched to."""
    run = Run(host, s, action, lambda: server_state(host, s))
    run.lock = take(host, s, action, wait)
    before = server_state(host, s)
    run.outcome.before = before
    if host.dry:
        show_commits(s, host, before["commit"], sha)
    rid = release_id(datetime.now(timezone.utc), sha, False)

    def steps():   # decided as they go: after the build, the served release may hold this commit and export already
        if build:
            yield ("build", build_once, s, sha)
        yield from release_steps(host, s, sha, rid, run, release.serving(host, s, sha))
        yield from [("nginx-reload", nginx.reload_site, host, s), ("smoke", smoke_step, host, s),
                    ("retire", retire_step, host, s, before)]
    run_chain(run, steps(), switch_at="switch", discard=lambda: release.discard_unserved(host, s, run, rid, before),
              put_back=lambda: put_back_after_failure(host, s, before, rid))
    if not host.dry:
        _switched.append((host, s, before))


@task
@own_lock
def upload(c):
    """Ship the built export as a new release of the served backend commit.

    Send the local export (built by `build`, only the files the served release lacks) into a new release that keeps
    the served backend commit; the release is verified and switched to as a deploy's is.
    """
    s = settings_of(c)
    host = host_of(c, s)
    served = server_state(host, s)
    if not served["commit"]:
        raise UserError(f"[{host.name}] {s.app_root} serves no release: run setup first")
    release.checked_export(s)
    ship(host, s, served["commit"], "upload")


@task(help={"to": "a release id from `releases`, or a run id from `history` (default: the release before the served "
                  "one)",
            "restore_db": "also restore the database backup taken before the migrations that came after it "
                          "(data written since is lost)"})
@own_lock
def rollback(c, to=None, restore_db=False):
    """Serve an earlier release again (frontend and backend), offline.

    Serve a kept release again: its backend started beside the served one and checked, then one switch; no git, no
    uv, no network. The database stays as it is unless --restore-db.
    """
    s = settings_of(c)
    host = host_of(c, s)
    # the history only names runs (--to RUN_ID) and the backups before migrations: not needed for a plain rollback
    entries = read_history(host, s) if to or restore_db else []
    target = records.rollback_target(release.server_releases(host, s)["releases"], to, entries)
    release.refuse_damaged(host, s, target)
    backup = records.backup_before(entries, target) if restore_db else ""
    if restore_db and not backup:
        raise UserError(f"no migrations ran since release {target} served, so there is no backup to restore: roll "
                        "back without --restore-db")
    run = Run(host, s, "rollback", lambda: server_state(host, s))
    run.lock = take(host, s, "rollback")
    run.outcome.before = server_state(host, s)
    host.say(f"rolling back to release {target} (from {run.outcome.before['release']})")
    if host.dry:
        host.say("would start that release, switch to it and stop the served one"
                 + (f", and restore backup {backup}" if backup else ""))
        run.finish("planned")
        return
    steps = [("put back", put_back, host, s, {"release": target})]
    if backup:
        host.say(f"warning: restoring the database to backup {backup}: what was written since is lost (the current "
                 "database is backed up first)")
        steps.append(("restore-db", backups.restore_backup, host, s, backup))
        run.outcome.backup = backup
    run_chain(run, steps, switch_at="put back", discard=lambda: "",
              put_back=lambda: put_back_after_failure(host, s, run.outcome.before, None))


ns = Collection(deploy, upload, rollback)
