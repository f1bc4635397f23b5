"""Whole-app releases (DESIGN.md, "Server layout"; guide section 9: upload with the right modes).

One deploy makes releases/<id>/: the backend at the exact commit (from the server's clone, which never runs), its
own venv and collected static files, and the frontend export; `current` points at the served one and is switched
with one rename, so nginx and systemd see frontend and backend change together. A release is sealed (release.json)
once complete; an unsealed one is a leftover that the next deploy removes.

The export travels as one gzip'd tar stream holding only files the served release lacks; the server hard-links
the rest and verifies the whole export against the manifest.
"""
import gzip
import io
import json
import shlex
import tarfile
import time
from typing import Optional

from invoke import Collection, task
from rich.table import Table

from . import remote
from .core import backend_plan as plan
from .core import bundle, releases
from .core.console import print_table
from .core.errors import UserError
from .core.runtime import host_of, settings_of
from .git import git

DRY_LISTED = 30   # files a dry upload names one by one


def local_export(s):
    return s.local_path(s.app_dir) / s.frontend.dir / s.frontend.out


def front(s) -> str:
    """The export's path inside a release (and inside the app root, where the guide serves it)."""
    return f"{s.frontend.dir}/{s.frontend.out}"


def agent(host, s, command: str, *args, sudo: bool = False) -> dict:
    """The release agent's answer to `command` about this app's releases."""
    return remote.ask(host, "release_agent", command, s.app_root, *args, sudo=sudo)


def server_releases(host, s) -> dict:
    result = host.probe(remote.command("release_agent", "list", s.app_root, front(s)))
    answer = remote.parse_answer(result.stdout)
    if "error" in answer or result.failed:
        raise UserError(f"[{host.name}] cannot read the releases: {answer.get('error') or result.stderr.strip()}")
    return answer


def served(host, s) -> Optional[str]:
    """The release `current` points at (what nginx and the backend serve), or None."""
    target = host.probe(f"readlink {shlex.quote(plan.release_dir(s))}").stdout.strip()
    return target.rstrip("/").rsplit("/", 1)[-1] or None


def serving(host, s, sha: str) -> Optional[str]:
    """The served release when it already holds commit `sha` and the local export (then a deploy has nothing to
    ship), else None."""
    found = server_releases(host, s)
    current = next((r for r in found["releases"] if r["current"]), None)
    if not current or current["commit"] != sha:
        return None
    export = local_export(s)
    info = bundle.read_build_info(export)
    if not info or releases.decode_manifest(current) != info.get("manifest") or current["env"] != info.get("env"):
        return None
    return current["id"]


def new_release(host, s, rid: str, sha: str) -> Optional[str]:
    """releases/<rid>/ with the backend's files at commit `sha`, taken from the server's clone (git archive), after
    removing what unfinished releases left."""
    left = agent(host, s, "clean", sudo=True).get("removed") or []
    if left:
        host.say(f"removed unfinished release(s) a failed or killed run left: {', '.join(left)}")
    directory = plan.release_dir(s, rid)
    paths = " ".join(shlex.quote(p) for p in plan.code_paths(s))
    made = host.run(f"mkdir -m 755 {shlex.quote(directory)} && " + git(s, f"archive --format=tar {sha} -- {paths}")
                    + f" | tar -x -C {shlex.quote(directory)}", warn=True)
    if made is None:
        host.say(f"would make release {rid} from commit {sha[:7]}")
        return None
    if made.failed:
        raise UserError(f"[{host.name}] cannot make release {rid} from commit {sha[:7]}: "
                        f"{(made.stderr.strip().splitlines() or ['no output'])[-1]}")
    return f"release {rid} ({sha[:7]})"


def checked_export(s):
    """The export's build-info, after checking it belongs to this environment and was not changed since."""
    export = local_export(s)
    info = bundle.read_build_info(export)
    problem = bundle.environment_mismatch(info, s.env)
    if problem:
        raise UserError(f"{export}: {problem}")
    if bundle.manifest(export) != info["manifest"]:
        raise UserError(f"{export} changed after it was built: run `build` again")
    return export, info


def tar_stream(export, upload_plan: dict):
    """produce(write, advance) for Host.stream: the plan first, then the changed files, gzip level 1 (fast)."""
    def produce(write, advance):
        class Sink(io.RawIOBase):
            def writable(self):
                return True

            def write(self, data):
                write(bytes(data))
                return len(data)

        with gzip.GzipFile(fileobj=io.BufferedWriter(Sink(), 1 << 16), mode="wb", compresslevel=1, mtime=0) as gz, \
                tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            data = json.dumps(upload_plan).encode()
            member = tarfile.TarInfo(".qms-plan.json")
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
            for rel in upload_plan["changed"]:
                path = export / rel
                member = tarfile.TarInfo(rel)
                member.size = path.stat().st_size
                member.mode = 0o644
                with open(path, "rb") as f:
                    tar.addfile(member, f)
                advance(member.size)
    return produce


def upload_export(host, s, rid: str) -> Optional[str]:
    """The local export into release `rid`: only what the served release's export lacks travels."""
    export, info = checked_export(s)
    found = server_releases(host, s)
    base = next((r for r in found["releases"] if r["current"]), None)
    base_manifest = releases.decode_manifest(base) if base else None
    changed, removed = releases.plan_upload(info["manifest"], base_manifest)
    size = sum(entry[1] for entry in changed.values())
    label = f"{releases.count(len(changed), 'file')} ({releases.human_size(size)})"
    upload_plan = {"base": base and base["id"], "changed": changed, "removed": removed,
                   "manifest_sha": releases.manifest_digest(info["manifest"]),
                   "info": {key: info[key] for key in ("env", "api_url", "git_sha", "dirty", "built_at")}}
    started = time.monotonic()
    stdout = host.stream(remote.command("release_agent", "receive", s.app_root, rid, front(s)),
                         tar_stream(export, upload_plan), label=f"{label} of the export", total=size)
    if stdout is None:   # --dry
        for rel in list(changed)[:DRY_LISTED]:
            host.say(f"  would send {rel}")
        if len(changed) > DRY_LISTED:
            host.say(f"  ... and {len(changed) - DRY_LISTED} more")
        for rel in removed[:DRY_LISTED]:
            host.say(f"  would drop {rel}")
        host.say(f"would reuse {releases.count(len(info['manifest']) - len(changed), 'unchanged file')} from "
                 f"{upload_plan['base'] or 'no served release'}")
        return None
    answer = remote.parse_answer(stdout)
    if "error" in answer:
        raise UserError(f"[{host.name}] upload refused: {answer['error']}")
    host.say(f"export: sent {label} in {time.monotonic() - started:.1f} s, reused "
             f"{releases.count(answer['linked'], 'unchanged file')} from {answer['base'] or 'nothing'}")
    return f"export: {label} sent" if changed else None


def seal(host, s, rid: str, sha: str) -> None:
    """Mark release `rid` complete: only a sealed release can be served, rolled back to, or kept."""
    export, info = checked_export(s)
    agent(host, s, "seal", rid, plan.socket_path(s, rid),
          json.dumps({"commit": sha, "frontend_commit": info.get("git_sha"), "env": s.env,
                      "links": plan.release_links(s)}))


def switch(host, s, rid: str) -> Optional[str]:
    """Serve release `rid` (one rename of `current`); returns the release it replaced."""
    answer = agent(host, s, "switch", rid, front(s))
    return answer.get("previous")


def prune(host, s, protected: tuple = ()) -> list[str]:
    """Remove releases beyond qms.keep_releases, oldest first; never the served one or `protected`."""
    return agent(host, s, "prune", s.keep_releases, *[p for p in protected if p], sudo=True).get("pruned") or []


@task(name="releases")
def list_releases(c):
    """List the releases on the server; the served one marked *.

    List the whole-app releases on the server (id, backend commit, frontend build, age, size), the served one marked
    with *. rollback --to takes an id from here.
    """
    s = settings_of(c)
    host = host_of(c, s)
    found = server_releases(host, s)
    table = Table(title=f"{host.name}: {plan.releases_dir(s)}")
    for column in ("", "release", "backend", "frontend build", "env", "sealed", "size"):
        table.add_column(column)
    for r in found["releases"]:
        built = (r["git_sha"] or "?")[:7] + (" dirty" if r["dirty"] else "") + f" {r['built_at'] or ''}".rstrip()
        table.add_row("*" if r["current"] else "", r["id"], (r["commit"] or "?")[:7], built, r["env"] or "?",
                      r["sealed_at"] or "?", releases.human_size(r["bytes"]))
    print_table(table)
    if not found["releases"]:
        print("no releases yet: run setup or deploy")


ns = Collection(list_releases)
