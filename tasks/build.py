"""Build the Next.js export on this machine (guide section 2: never on the 1 GB server; section 7: the API URL).

Works under `inv` and `fab`, on Linux, macOS and Windows: only Python's own modules and npm (npm.cmd on Windows).
The API URL comes from the environment's settings and is set explicitly for the build, so neither the shell nor
`.env.local` can silently win; the export is then scanned and stamped with build-info.json.
"""
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from invoke import Collection, task

from .core import app_check, bundle, memory
from .core.checks import FAIL
from .core.errors import UserError
from .core.local_files import find_npm, local_git, remove_tree
from .core.local_process import exclusive, run_grouped
from .core import releases
from .core.releases import human_size
from .core.runtime import settings_of
from .secrets_check import repo_of
from .lock import read_only


def api_url_of(s) -> str:
    if s.frontend.api_url:
        return s.frontend.api_url
    domain = s.require("domains", "the API URL of the build (or set qms.frontend.api_url)")[0]
    return f"https://{domain}{s.backend.api_prefix.rstrip('/')}"


def build_env(s, api_url: str) -> dict:
    """The variables the build gets on top of this process's environment; ours win over the shell."""
    return {**s.frontend.build_env, "NEXT_PUBLIC_API_URL": api_url, "NEXT_TELEMETRY_DISABLED": "1"}


def git_state(directory: Path) -> tuple[str, bool]:
    """(sha, dirty) of the checkout holding `directory`; ('', True) when it is not in git."""
    try:
        sha, dirty = local_git(directory, "rev-parse", "HEAD"), local_git(directory, "status", "--porcelain", "--", ".")
    except OSError:
        return "", True
    if sha.returncode != 0 or dirty.returncode != 0:
        return "", True
    return sha.stdout.strip(), bool(dirty.stdout.strip())


def npm_install_needed(frontend: Path) -> bool:
    """npm records the installed tree in node_modules/.package-lock.json; a newer lock file means `npm ci`."""
    marker = frontend / "node_modules" / ".package-lock.json"
    lock = frontend / "package-lock.json"
    return not marker.exists() or (lock.exists() and lock.stat().st_mtime > marker.stat().st_mtime)


def run_npm(npm: str, args: list[str], frontend: Path, env: dict) -> None:
    print(f"build: npm {' '.join(args)}", flush=True)
    code = run_grouped([npm, *args], frontend, env)   # npm and the `next build` it starts end with this command
    if code != 0:
        raise UserError(f"npm {' '.join(args)} failed with exit code {code} in {frontend}: see its output above")


def shadowing_env_files(frontend: Path, api_url: str) -> list[str]:
    """.env files that set NEXT_PUBLIC_API_URL to something else: ignored now, but worth a word."""
    found = []
    for name in (".env", ".env.local", ".env.production", ".env.production.local"):
        path = frontend / name
        if path.is_file():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "NEXT_PUBLIC_API_URL" and value.strip().strip("'\"") != api_url:
                    found.append(f"{name} ({value.strip()})")
    return found


@task(help={"install": "run `npm ci` even when node_modules looks current (default: only when needed)"})
@read_only
def build(c, install=False):
    """Build the frontend export here, with the env's API URL.

    Build the frontend export locally with the environment's API URL, check the bundle, write build-info.json.
    """
    make_export(settings_of(c), install, dry=c.config.run.dry)


def refuse_small_machine(s) -> None:
    """The guide's first failure: `npm run build` on the 1 GB server ran 30+ minutes and hung (swap thrashing). Say
    so before npm starts, not half an hour later."""
    have, need = memory.local_usable(), s.frontend.build_min_memory_mb
    if need and have is not None and have < need << 20:
        raise UserError(f"this machine has {have >> 20} MB of memory and a Next.js build needs about {need} MB (it "
                        "hung on the guide's 1 GB server): build on your own machine and deploy from there, or set "
                        "qms.frontend.build_min_memory_mb: 0 to build here anyway")


def make_export(s, install: bool = False, dry: bool = False) -> None:
    """The build itself; local only, so a deploy's plan runs it for real to show what an upload would send."""
    env_name = s.require("env", "build (pick an environment with -f conf/ENV.yaml)")
    frontend = s.local_path(s.app_dir) / s.frontend.dir
    if not (frontend / "package.json").is_file():
        raise UserError(f"no package.json in {frontend}: set qms.app_dir (and qms.frontend.dir) in {s.source}")
    npm = find_npm()
    # a build without output: 'export' runs a minute and leaves no export: say so before it starts
    name, text = app_check.next_config(frontend)
    layout = app_check.Layout.of(s)
    refused = [f for f in app_check.next_config_findings(name and f"{layout.frontend}/{name}", text, layout)
               if f.result == FAIL]
    if refused:
        fix = refused[0].fix.replace("\n", " ")   # one line: a fix may show a file's text
        raise UserError(f"{refused[0].saw}: {fix}")
    api_url = api_url_of(s)
    extra = build_env(s, api_url)
    print(f"build: {env_name}: NEXT_PUBLIC_API_URL={api_url} (from {s.source})", flush=True)
    for shadowed in shadowing_env_files(frontend, api_url):
        print(f"build: note: {shadowed} is ignored: the settings' value wins", flush=True)
    if dry:
        print(f"build: would run npm {'ci, npm ' if install or npm_install_needed(frontend) else ''}run build "
              f"in {frontend}")
        return
    refuse_small_machine(s)
    with exclusive(frontend, f"a build of {frontend}"):   # two builds in one .next/ and out/ break each other
        build_export(s, frontend, npm, install, {**os.environ, **extra}, api_url, env_name)


def build_export(s, frontend: Path, npm: str, install: bool, env: dict, api_url: str, env_name: str) -> None:
    started = time.monotonic()
    if install or npm_install_needed(frontend):
        run_npm(npm, ["ci", "--no-audit", "--no-fund"], frontend, env)
    out = frontend / s.frontend.out
    if out.exists():
        remove_tree(out)   # a file left from an older build must not ride along
    run_npm(npm, ["run", "build"], frontend, env)
    if not (out / "index.html").is_file():
        raise UserError(f"the build made no {out}/index.html: is `output: 'export'` set in next.config?")
    check_bundle(out, api_url, s.frontend.bundle_allow)
    sha, dirty = git_state(frontend)
    info = bundle.build_info(out, env=env_name, api_url=api_url, git_sha=sha, dirty=dirty,
                             built_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    bundle.write_build_info(out, info)
    size = sum(size for _, size in info["manifest"].values())
    print(f"build: {out}: {len(info['manifest'])} files, {human_size(size)}, git {sha[:7] or '-'}"
          f"{' (dirty)' if dirty else ''}, in {time.monotonic() - started:.0f} s")


def build_once(s, sha: str) -> Optional[str]:
    """Build unless the export already holds this commit's frontend for this environment: built for another host
    of this run, by `build`, or from an earlier commit that changed nothing under the frontend (a backend-only
    deploy then neither builds nor uploads). Also under a plan: the build is local, and the plan lists what its
    upload sends."""
    export = releases.local_export(s)
    info = bundle.read_build_info(export)
    if (info and info.get("git_sha") and not info.get("dirty") and info.get("env") == s.env
            and info.get("api_url") == api_url_of(s) and bundle.manifest(export) == info.get("manifest")):
        repo = repo_of(s, None)
        frontend = s.local_path(s.app_dir) / s.frontend.dir
        unchanged = info["git_sha"] == sha or local_git(
            repo, "diff", "--quiet", "--end-of-options", info["git_sha"], sha, "--", str(frontend.resolve())).returncode == 0
        if unchanged:
            print(f"build: {export} holds the frontend of {sha[:7]} (built from {info['git_sha'][:7]}): "
                  "not building again")
            return None
    make_export(s)
    return f"export of {sha[:7]}"


def check_bundle(out: Path, api_url: str, allow: list[str]) -> None:
    """Refuse an export that would call the wrong API: every hit on a line of its own, then one error with the fix."""
    problems = bundle.scan(out, api_url, allow)
    if not problems:
        return
    for problem in problems:
        print(f"build: {problem.details()}", flush=True)
    fixes = {bundle.LITERAL: "remove the literal from the frontend's source and read process.env.NEXT_PUBLIC_API_URL "
                             "(the build sets it from qms.frontend.api_url)",
             bundle.UNSET: "set the variable for the build (NEXT_PUBLIC_API_URL comes from qms.frontend.api_url, "
                           "others from qms.frontend.build_env)",
             bundle.CONFIGURED: f"set qms.frontend.api_url (now {api_url}) to an address visitors can reach",
             bundle.MISSING: f"make the frontend read process.env.NEXT_PUBLIC_API_URL (the build sets it to {api_url} "
                             "from qms.frontend.api_url)"}
    kinds = dict.fromkeys(problem.kind for problem in problems)
    steps = [fixes[kind] for kind in kinds]
    if kinds.keys() - {bundle.MISSING}:
        steps.append("or, for a hit that is fine, add it (or a part of its context) to qms.frontend.bundle_allow")
    more = f" (and {len(problems) - 1} more, listed above)" if len(problems) > 1 else ""
    raise UserError(f"the bundle would call the wrong API: {problems[0]}{more}: {'; '.join(steps)}; then build again")


ns = Collection(build)
