"""Before the first `setup`: every way an app does not fit this tool, each with the exact change (issue 18).

Local (`inv app-check` or `fab app-check`, Windows too): it reads the app's files and asks git what it tracks; no
server, no network. The checks are tasks/core/app_check.py; this adds git's answers and prints them as doctor does.
"""
from __future__ import annotations

from pathlib import Path

from invoke import Collection, task

from .core import app_check as checks
from .core.checks import FAIL, OK, WARN, Finding
from .core.console import print_findings
from .core.errors import UserError
from .core.runtime import settings_of
from .core.local_files import local_git
from .secrets_check import problems, repo_of
from .lock import read_only


def git_findings(s, app: Path, layout: checks.Layout) -> list[Finding]:
    check = "git: generated files"
    try:
        inside = local_git(app, "rev-parse", "--is-inside-work-tree")
    except OSError:
        return [Finding(check, WARN, "git is not installed: tracked files not checked", "install git (the server "
                                                                                        "clones qms.repo with it)")]
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return [Finding(check, WARN, f"{app} is not in a git repository: tracked files not checked",
                        "commit the app to git: the server clones it from qms.repo")]
    secrets = [Finding("git: secret files", FAIL, problem, "inv check-secrets lists them with their fixes")
               for problem in problems(s, repo_of(s, app))]
    kinds = checks.generated(layout)
    tracked = [path for path in local_git(app, "ls-files", "-z").stdout.split("\0") if path]
    # one path at a time: git gives up on the whole batch at a path it cannot judge (one beyond a symbolic link),
    # and such a path is left out rather than reported as not ignored
    answers = {kind.sample: local_git(app, "check-ignore", "-q", "--no-index", kind.sample).returncode
               for kind in kinds}
    ignored = {sample for sample, code in answers.items() if code != 1}
    return secrets + checks.tracked_findings(tracked, ignored, kinds)


def check_app(s, directory=None) -> tuple[Path, list[Finding]]:
    """The app's folder (`directory`, else qms.app_dir) and every finding about it."""
    app = (Path(directory) if directory else s.local_path(s.app_dir)).resolve()
    if not app.is_dir():
        raise UserError(f"{app} is not a folder: pass --dir or set qms.app_dir to your app's checkout")
    layout = checks.Layout.of(s)
    return app, checks.app_findings(app, layout) + git_findings(s, app, layout)


@task(help={"dir": "the app's checkout to check (default: qms.app_dir; qms.frontend.dir and qms.backend.dir are "
                   "inside it)",
            "json": "print the findings as JSON (for scripts) instead of a table"})
@read_only
def app_check(c, dir_=None, json_=False):
    """Check an app fits this tool, before its first setup.

    Local and read-only: the Next.js export (output: 'export', no server-only features, no localhost API URLs), the
    Django project (manage.py, settings that read the server's .env, uv and uvicorn, the API prefix, health and admin
    URLs), and generated files tracked by git. Each problem with file:line and the change; exit 1 on a fail.
    """
    app, findings = check_app(settings_of(c), dir_)
    print_findings(f"{app}: app-check", findings, json_, {"app": str(app)})
    refuse_misfit(app, findings)
    if not json_:
        warned = sum(f.result == WARN for f in findings)
        print(f"app-check: {app} fits: {len(findings)} checks" + (f", {warned} warning(s)" if warned else ""))


def refuse_misfit(app: Path, findings: list[Finding]) -> None:
    failed = sum(f.result == FAIL for f in findings)
    if failed:
        raise UserError(f"{app}: {failed} problem(s) keep this app from fitting qms-deploy: each finding's fix "
                        "says what to change")


def app_check_step(s) -> None:
    """setup's first step, before the server is touched: the findings that are not ok, and a refusal on a fail."""
    app, findings = check_app(s)
    shown = [f for f in findings if f.result != OK]
    if shown:
        print_findings(f"{app}: app-check", shown, False, {})
    refuse_misfit(app, findings)


ns = Collection(app_check)
