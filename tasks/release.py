"""Upload the static export as an atomic release, and list releases (guide section 9: upload with the right modes).

The export travels as one gzip'd tar stream holding only files the current release lacks; the server hard-links
the rest, verifies the whole release against the manifest, sets modes, and switches `frontend/out` with one
rename. A killed upload leaves the site on the previous release; the next upload clears the leftovers.
"""
import gzip
import io
import json
import tarfile
import time
from datetime import datetime, timezone

from invoke import Collection, task
from rich.table import Table

from . import remote
from .core import bundle, releases
from .core.console import print_table
from .core.errors import UserError
from .core.runtime import host_of, settings_of


DRY_LISTED = 30   # files a dry upload names one by one


def local_export(s):
    return s.local_path(s.app_dir) / s.frontend.dir / s.frontend.out


def server_releases(host, s) -> dict:
    root, out = releases.paths(s.app_root, s.frontend.dir, s.frontend.out)
    result = host.probe(remote.command("release_agent", "list", root, out))
    answer = remote.parse_answer(result.stdout)
    if "error" in answer or result.failed:
        raise UserError(f"[{host.name}] cannot read the releases: {answer.get('error') or result.stderr.strip()}")
    return answer


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


def tar_stream(export, plan: dict):
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
            data = json.dumps(plan).encode()
            member = tarfile.TarInfo(".qms-plan.json")
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
            for rel in plan["changed"]:
                path = export / rel
                member = tarfile.TarInfo(rel)
                member.size = path.stat().st_size
                member.mode = 0o644
                with open(path, "rb") as f:
                    tar.addfile(member, f)
                advance(member.size)
    return produce


@task
def upload(c):
    """Upload the export as a new release and switch to it.

    Upload the built export as a new release (only changed files), verify it, switch frontend/out atomically.
    """
    s = settings_of(c)
    export, info = checked_export(s)
    host = host_of(c, s)
    found = server_releases(host, s)
    current = next((r for r in found["releases"] if r["current"]), None)
    current_manifest = releases.decode_manifest(current) if current else None
    if current_manifest == info["manifest"] and current["env"] == s.env:
        host.say(f"release {current['id']} already serves this export: nothing to upload")
        return None
    changed, removed = releases.plan_upload(info["manifest"], current_manifest)
    rid = releases.release_id(datetime.now(timezone.utc), info["git_sha"], info["dirty"])
    size = sum(entry[1] for entry in changed.values())
    label = f"{releases.count(len(changed), 'file')} ({releases.human_size(size)}) of release {rid}"
    if found["out_is_dir"]:
        host.say(f"{s.frontend.dir}/{s.frontend.out} is a plain directory: it is kept as a release for rollback")
    root, out = releases.paths(s.app_root, s.frontend.dir, s.frontend.out)
    plan = {"id": rid, "base": current and current["id"], "changed": changed, "removed": removed,
            "manifest_sha": releases.manifest_digest(info["manifest"]), "keep": s.frontend.keep_releases,
            "info": {key: info[key] for key in ("env", "api_url", "git_sha", "dirty", "built_at")}}
    started = time.monotonic()
    stdout = host.stream(remote.command("release_agent", "receive", root, out), tar_stream(export, plan),
                         label=label, total=size)
    if stdout is None:   # --dry
        for rel in list(changed)[:DRY_LISTED]:
            host.say(f"  would send {rel}")
        if len(changed) > DRY_LISTED:
            host.say(f"  ... and {len(changed) - DRY_LISTED} more")
        for rel in removed[:DRY_LISTED]:
            host.say(f"  would drop {rel}")
        host.say(f"would reuse {releases.count(len(info['manifest']) - len(changed), 'unchanged file')} from "
                 f"{plan['base'] or 'no current release'} and switch {out} to {rid}")
        return None
    answer = remote.parse_answer(stdout)
    if "error" in answer:
        raise UserError(f"[{host.name}] upload refused: {answer['error']}; the site still serves "
                        f"{plan['base'] or 'what it served before'}")
    host.say(f"release {answer['id']}: sent {label.split(' of ')[0]} in {time.monotonic() - started:.1f} s, reused "
             f"{releases.count(answer['linked'], 'unchanged file')}; {s.frontend.dir}/{s.frontend.out} now serves it "
             f"(was {answer['previous'] or 'nothing'})")
    if answer["pruned"]:
        host.say(f"pruned old releases: {', '.join(answer['pruned'])}")
    return f"release {answer['previous'] or 'none'} -> {answer['id']} ({label.split(' of ')[0]})"


@task(name="releases")
def list_releases(c):
    """List the frontend releases; the served one marked *.

    List the frontend releases on the server, the one being served marked with *.
    """
    s = settings_of(c)
    host = host_of(c, s)
    found = server_releases(host, s)
    table = Table(title=f"{host.name}: {s.app_root}/{s.frontend.dir}/releases")
    for column in ("", "release", "env", "git", "built", "API URL", "files"):
        table.add_column(column)
    for r in found["releases"]:
        git = (r["git_sha"] or "?")[:7] + (" dirty" if r["dirty"] else "")
        table.add_row("*" if r["current"] else "", r["id"], r["env"] or "?", git, r["built_at"] or "?",
                      r["api_url"] or "?", str(r["files"]))
    print_table(table)
    if not found["releases"]:
        print("no releases yet: run `upload`")


ns = Collection(upload, list_releases)
