"""What setup, deploy and rollback share: running steps in order with timing and a summary, the local preflight
(secrets, a clean tree, the commit on the remote the server pulls), the server's state before the switch, and
putting that state back.

Every step is a task of its own (or a check); a step returns what it changed, None when nothing.
"""
from __future__ import annotations

import getpass
import json
import posixpath
import socket
import time
from datetime import datetime, timezone
from typing import Optional

from rich.table import Table

from . import backend, build, git, release, remote, secrets_check, service
from .core import backend_plan as plan
from .core import bundle
from .core import deploy_records as records
from .core.console import print_table
from .core.errors import UserError
from .core.local_files import local_git
from .core.releases import paths as release_paths
from .history import append
from .lock import Lock
from .smoke import smoke_check


class Run:
    """One chain on one host: steps timed, the lock told which step runs, the outcome kept for the history."""

    def __init__(self, c, host, s, action: str):
        self.c, self.host, self.s = c, host, s
        now = datetime.now(timezone.utc)
        self.outcome = records.Outcome(id=records.entry_id(now), action=action,
                                       by=f"{getpass.getuser()}@{socket.gethostname()}",
                                       started=now.strftime("%Y-%m-%d %H:%M:%S UTC"))
        self.lock: Lock = Lock(None)

    def step(self, name: str, body, *args, **kwargs):
        self.host.say(f"== {name}")
        self.lock.step(name)
        started = time.monotonic()
        try:
            change = body(*args, **kwargs)
        except UserError as failure:
            self.outcome.steps.append(records.Step(name, time.monotonic() - started, failed=failure.reason))
            self.outcome.failed_step, self.outcome.error = name, failure.reason
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
    """What the server serves now: the frontend release and the backend commit."""
    return {"release": release.server_releases(host, s)["current"], "commit": git.head(host, s)}


def last_migration(host, s) -> dict:
    text = host.read(posixpath.join(s.app_root, ".deploy", "migrate.json")) or b"{}"
    try:
        return json.loads(text)
    except ValueError:
        return {}


def migrate_step(c, host, s, run: Run) -> Optional[str]:
    """migrate, and the backup it took before, for the history (rollback --restore-db finds it there)."""
    change = backend.migrate(c)
    if change:
        run.outcome.backup = last_migration(host, s).get("backup", "")
    return change


def restart_if_needed(c, host, s, run: Run) -> Optional[str]:
    """Restart (or reload) only when the backend changed or is not running."""
    if host.dry:   # a plan's steps change nothing, so nothing here says whether the backend would change
        host.say("would reload or restart the backend if its commit, dependencies, .env or units change")
        return None
    backend_steps = run.changed("env", "git-pull", "deps", "migrate", "collectstatic", "service")
    if backend_steps == ["git-pull"] and not git.backend_changed(host, s):
        backend_steps = []   # the new commits touched only the frontend
    if not backend_steps and not service.needs_restart(host, s):
        host.say("backend unchanged and running: no restart")
        return None
    return service.restart(c, mode="auto")


def smoke_step(host, s) -> None:
    if not host.dry:
        smoke_check(host, s, strict=True)


def put_back(c, host, s, before: dict) -> Optional[str]:
    """Serve `before` again: its frontend release, its backend commit and dependencies, restarted and checked.
    The database is left as it is. Returns what was put back."""
    done = []
    now = server_state(host, s)
    if before.get("release") and before["release"] != now["release"]:
        root, out = release_paths(s.app_root, s.frontend.dir, s.frontend.out)
        answer = remote.parse_answer(host.run(remote.command("release_agent", "switch", root, out, before["release"]),
                                              warn=True).stdout)
        if "error" in answer:
            raise UserError(f"[{host.name}] cannot serve release {before['release']} again: {answer['error']}")
        done.append(f"frontend release {before['release']}")
    if before.get("commit") and before["commit"] != now["commit"]:
        host.run(git.git(s, f"reset -q --keep {before['commit']}"))
        backend.deps(c)
        service.restart(c, mode="restart")
        done.append(f"backend commit {before['commit'][:7]}")
    smoke_check(host, s, strict=True)
    return ", ".join(done) or None


def run_chain(run: Run, steps, switch_at: str, before: dict) -> None:
    """Run (name, body, args...) steps; when one fails at or after `switch_at` (the first step that changes what
    is served), put `before` back. Always leaves a history entry and a released lock."""
    host = run.host
    switched = False
    try:
        for name, body, *args in steps:
            switched = switched or name == switch_at
            run.step(name, body, *args)
    except UserError as failure:
        if not switched or host.dry:
            run.finish("failed")
            raise
        if run.outcome.failed_step != "restart":   # restart shows the journal itself
            print(service.journal_tail(host, run.s, 20), end="")
        host.say(f"{run.outcome.failed_step} failed: putting back what was served before")
        try:
            restored = put_back(run.c, host, run.s, before)
        except UserError as second:
            run.finish("failed")
            raise UserError(f"{failure.reason}; putting back failed too: {second.reason}; check the site (fab history, "
                            "fab smoke)") from None
        run.finish("rolled back")
        raise UserError(f"{failure.reason}; " + (f"put back {restored}" if restored else "nothing had changed")
                        + ": the site serves what it served before") from None
    run.finish("planned" if host.dry else "ok")
