"""What setup, deploy and rollback share: running steps in order with timing and a summary, the local preflight
(secrets, a clean tree, the commit on the remote the server pulls), the steps that make and verify a release, and
putting back what was served.

A step returns what it changed, None when nothing. Until the switch, nothing a user reaches has changed (the
database aside: migrations run before, after a backup); a failure then discards the new release. After it, a
failure serves the previous release again.
"""
from __future__ import annotations

import contextlib
import getpass
import json
import posixpath
import socket
import time
from datetime import datetime, timezone
from typing import Optional

from rich.table import Table

from . import backend, build, envfile, git, release, secrets_check, service
from .core import backend_plan as plan
from .core import bundle
from .core import deploy_records as records
from .core.console import print_table
from .core.errors import UserError
from .core.local_files import local_git
from .history import append
from .lock import Lock
from .smoke import smoke_check


class Run:
    """One chain on one host: steps timed, the lock told which step runs, the outcome kept for the history."""

    def __init__(self, host, s, action: str):
        self.host, self.s = host, s
        now = datetime.now(timezone.utc)
        self.outcome = records.Outcome(id=records.entry_id(now), action=action,
                                       by=f"{getpass.getuser()}@{socket.gethostname()}",
                                       started=now.strftime("%Y-%m-%d %H:%M:%S UTC"))
        self.lock: Lock = Lock(None)
        # what undoes a step's change to the server when the run fails before the switch (newest first)
        self.undo: list = []

    def step(self, name: str, body, *args, **kwargs):
        self.host.say(f"== {name}")
        self.lock.step(name)
        started = time.monotonic()
        try:
            change = body(*args, **kwargs)
        except BaseException as failure:   # Ctrl-C and a bug as well: the history says where it stopped
            reason = failure.reason if isinstance(failure, UserError) else \
                "interrupted" if isinstance(failure, KeyboardInterrupt) else f"{type(failure).__name__}: {failure}"
            self.outcome.steps.append(records.Step(name, time.monotonic() - started, failed=reason))
            self.outcome.failed_step, self.outcome.error = name, reason
            if not hasattr(failure, "qms_step"):   # the one line a bug ends in names the step
                failure.qms_step = name
            raise
        self.outcome.steps.append(records.Step(name, time.monotonic() - started, change))
        return change

    def changed(self, *names: str) -> list[str]:
        """The steps (of `names`, default all) that changed something."""
        return [st.name for st in self.outcome.steps if st.change and (not names or st.name in names)]

    def finish(self, result: str) -> None:
        """Record the outcome in the server's history (not under --dry), release the lock, print the summary."""
        self.outcome.result = result
        if not self.host.dry:
            self.outcome.after = server_state(self.host, self.s)
            try:
                append(self.host, self.s, self.outcome)
            except UserError as failure:
                self.host.say(f"warning: could not write the history: {failure.reason}")
        self.lock.release()
        table = Table(title=f"{self.host.name}: {self.outcome.action} {self.outcome.id}: {result}")
        for column in ("step", "took", "what changed"):
            table.add_column(column)
        for row in records.summary_rows(self.outcome.steps):
            table.add_row(*row)
        print_table(table)
        total = sum(st.seconds for st in self.outcome.steps)
        changed = self.changed()
        if self.host.dry:   # a plan may build here (the build is local), never change the server
            self.host.say(f"{self.outcome.action} {result} in {total:.1f} s: the server was not changed"
                          + ("; the export was built here" if "build" in changed else ""))
            return
        self.host.say(f"{self.outcome.action} {result} in {total:.1f} s: "
                      + (f"changed {', '.join(changed)}" if changed else "nothing changed"))


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


def build_once(s, sha: str) -> Optional[str]:
    """Build unless the export already holds this commit's frontend for this environment: built for another host
    of this run, by `build`, or from an earlier commit that changed nothing under the frontend (a backend-only
    deploy then neither builds nor uploads). Also under a plan: the build is local, and the plan lists what its
    upload sends."""
    export = release.local_export(s)
    info = bundle.read_build_info(export)
    if (info and info.get("git_sha") and not info.get("dirty") and info.get("env") == s.env
            and info.get("api_url") == build.api_url_of(s) and bundle.manifest(export) == info.get("manifest")):
        repo = secrets_check.repo_of(s, None)
        frontend = s.local_path(s.app_dir) / s.frontend.dir
        unchanged = info["git_sha"] == sha or local_git(
            repo, "diff", "--quiet", "--end-of-options", info["git_sha"], sha, "--", str(frontend.resolve())).returncode == 0
        if unchanged:
            print(f"build: {export} holds the frontend of {sha[:7]} (built from {info['git_sha'][:7]}): "
                  "not building again")
            return None
    build.make_export(s)
    return f"export of {sha[:7]}"


def server_state(host, s) -> dict:
    """What the server serves now: the release `current` points at, and its backend commit."""
    rid = release.served(host, s)
    info = host.read(f"{s.app_root}/releases/{rid}/release.json") if rid else None
    try:
        commit = json.loads(info).get("commit", "") if info else ""
    except ValueError:
        commit = ""
    return {"release": rid, "commit": commit}


def last_migration(host, s) -> dict:
    text = host.read(posixpath.join(s.app_root, ".deploy", "migrate.json")) or b"{}"
    try:
        return json.loads(text)
    except ValueError:
        return {}


def migrate_step(host, s, rid: str, run: Run) -> Optional[str]:
    """migrate, and the backup it took before, for the history (rollback --restore-db finds it there)."""
    change = backend.migrate(host, s, rid)
    if change:
        run.outcome.backup = last_migration(host, s).get("backup", "")
    return change


def switch_step(host, s, rid: str) -> Optional[str]:
    """Serve the new release: one rename moves frontend and backend together."""
    if host.dry:
        host.say(f"would switch {s.app_root}/current to release {rid}")
        return None
    previous = release.switch(host, s, rid)
    host.say(f"{s.app_root}/current: {previous or 'nothing'} -> {rid}")
    return f"{previous or 'nothing'} -> {rid}"


def retire_step(host, s, before: dict) -> Optional[str]:
    """After the new release passed the smoke checks: stop the one it replaced (kept for rollback) and prune."""
    previous = before.get("release")
    if host.dry:
        return None
    if previous and previous != release.served(host, s):
        service.stop(host, s, previous)
    pruned = release.prune(host, s, protected=(previous,))
    for rid in pruned:
        service.stop(host, s, rid)
    if pruned:
        host.say(f"pruned release(s) {', '.join(pruned)} (qms.keep_releases: {s.keep_releases})")
    return f"stopped {previous}" if previous else None


def release_steps(host, s, sha: str, rid: str, run: Run, served: Optional[str]):
    """The steps that ship commit `sha` with the local export (built by then): a new release `rid` made complete
    and verified beside the served one (migrations included) up to its start; or, when the served release holds
    both already (`served`), only the .env and units, and a restart if they changed. What setup and deploy share;
    a generator, so that it decides after the steps before it ran."""
    yield ("env", envfile.write_env, host, s)
    if served:
        yield ("service", service.service_step, host, s, served)
        yield ("restart", restart_if_changed, host, s, served, run)
        return
    yield from [("git-pull", git.pull, host, s, None, sha),
                ("release", release.new_release, host, s, rid, sha), ("deps", backend.deps, host, s, rid),
                ("upload", release.upload_export, host, s, rid),
                ("app-settings", backend.app_settings_step, host, s, rid), ("migrate", migrate_step, host, s, rid, run),
                ("collectstatic", backend.collectstatic, host, s, rid),
                ("seal", release.seal, host, s, rid, sha), ("service", service.service_step, host, s, rid),
                ("start", service.start, host, s, rid), ("switch", switch_step, host, s, rid)]


def restart_if_changed(host, s, served: str, run: Run) -> Optional[str]:
    """The served release already holds the commit and the export: restart it only for a new .env or new units."""
    changed = run.changed("env", "service")
    if not changed:
        host.say(f"release {served} already serves this commit and export: nothing to ship")
        return None
    if host.dry:
        host.say(f"would restart {plan.instance(s, served)} ({', '.join(changed)} changed)")
        return None
    return service.restart_release(host, s, served, "restart")


def smoke_step(host, s) -> None:
    if not host.dry:
        smoke_check(host, s, strict=True)


def put_back(host, s, before: dict, new: Optional[str] = None) -> Optional[str]:
    """Serve `before`'s release again: started (no git, no uv, no network), checked on its own socket, switched to,
    and the release that replaced it (`new`, or the one served now) stopped. The database is left as it is.
    Returns what was put back."""
    wanted, now = before.get("release"), release.served(host, s)
    if not wanted or wanted == now:
        if new and new != now:
            service.stop(host, s, new)
        return None
    if host.dry:
        host.say(f"would start release {wanted}, switch to it and stop {now}")
        return None
    service.start(host, s, wanted)
    release.switch(host, s, wanted)
    if now:
        service.stop(host, s, now)
    smoke_check(host, s, strict=True)
    return f"release {wanted}"


def discard(host, s, rid: str) -> None:
    """A release that never served: its instance stopped, its directory removed."""
    service.stop(host, s, rid)
    release.agent(host, s, "discard", rid, sudo=True)


def run_chain(run: Run, steps, switch_at: str, before: dict, new: Optional[str] = None) -> None:
    """Run (name, body, args...) steps. When one fails or is interrupted before `switch_at` (the step that changes
    what is served), discard the new release `new`; at or after it, serve `before` again. Always leaves a history
    entry and a released lock."""
    host = run.host
    switched = False
    try:
        for name, body, *args in steps:
            switched = switched or name == switch_at
            run.step(name, body, *args)
    except BaseException as failure:
        interrupted = not isinstance(failure, (UserError, Exception))
        reason = failure.reason if isinstance(failure, UserError) else run.outcome.error or str(failure)
        if host.dry:
            run.finish("failed")
            raise
        if not switched:
            discarded = False
            with contextlib.suppress(Exception):   # what it half-made must not outlive the run
                if new and run.changed("release"):
                    discard(host, run.s, new)
                    discarded = True
            for undo in reversed(run.undo):
                with contextlib.suppress(Exception):
                    undo()
            run.finish("interrupted" if interrupted else "failed")
            if interrupted or not isinstance(failure, UserError) or not discarded:
                raise
            raise UserError(f"{reason}; release {new} was discarded: the site still serves "
                            f"{before.get('release') or 'nothing yet'}") from None
        print(service.journal_tail(host, run.s, new or "*", 20), end="")
        host.say(f"{run.outcome.failed_step} {'was interrupted' if interrupted else 'failed'}: putting back what was "
                 "served before")
        try:
            restored = put_back(host, run.s, before, new)
        except Exception as second:
            run.finish("failed")
            why = second.reason if isinstance(second, UserError) else f"{type(second).__name__}: {second}"
            raise UserError(f"{reason}; putting back failed too: {why}; check the site (fab history, fab smoke)") \
                from None
        run.finish("rolled back")
        if interrupted:
            raise
        raise UserError(f"{reason}; " + (f"put back {restored}" if restored else "nothing had changed")
                        + ": the site serves what it served before") from None
    run.finish("planned" if host.dry else "ok")
