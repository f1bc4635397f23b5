"""Whole-app releases (DESIGN.md, "Server layout"; guide section 9: upload with the right modes).

One deploy makes releases/<id>/: the backend at the exact commit (from the server's clone, which never runs), its
own venv and collected static files, and the frontend export; `current` points at the served one and is switched
with one rename, so nginx and systemd see frontend and backend change together. A release is sealed (release.json)
once complete; an unsealed one is a leftover that the next deploy removes.

The export travels as one gzip'd tar stream holding only files the served release lacks; the server hard-links
the rest and verifies the whole export against the manifest.

Here too: the steps setup and deploy share to make and switch to a release (`release_steps`), what retires the old
one, and what a failure calls on: `discard_unserved` before the switch, `put_back` after it.
"""
import gzip
import io
import json
import posixpath
import shlex
import tarfile
import time
from typing import Optional

from invoke import Collection, task
from rich.table import Table

from . import remote
from .core import backend_plan as plan
from .core import bundle, clone, releases
from .core import deploy_records as records
from .core.console import print_table
from .core.errors import UserError
from .core.runtime import host_of, settings_of
from . import backend, envfile, service
from .git import pull as git_pull
from .smoke import smoke_check
from .lock import read_only

DRY_LISTED = 30   # files a dry upload names one by one


def front(s) -> str:
    """The export's path inside a release (and inside the app root, where the guide serves it)."""
    return f"{s.frontend.dir}/{s.frontend.out}"


def agent(host, s, command: str, *args, sudo: bool = False) -> dict:
    """The release agent's answer to `command` about this app's releases."""
    return remote.ask(host, "release_agent", command, s.app_root, *args, sudo=sudo)


def server_releases(host, s, *checked: str, sizes: bool = False) -> dict:
    """The sealed releases, oldest first; with `checked` (ids, `current` or `*`), each one's damage too: its files
    against its manifests by existence and size, and by hash for those named; with `sizes`, the disk each adds."""
    result = host.probe(remote.command("release_agent", "list", s.app_root, front(s), "sizes" if sizes else "-",
                                       *checked))
    answer = remote.parse_answer(result.stdout)
    if "error" in answer or result.failed:
        raise UserError(f"[{host.name}] cannot read the releases: {answer.get('error') or result.stderr.strip()}")
    return answer


def serving(host, s, sha: str) -> Optional[str]:
    """The served release when it already holds commit `sha` and the local export (then a deploy has nothing to
    ship), else None."""
    found = server_releases(host, s)
    current = next((r for r in found["releases"] if r["current"]), None)
    if not current or current["commit"] != sha:
        return None
    export = releases.local_export(s)
    info = bundle.read_build_info(export)
    if not info or releases.decode_manifest(current) != info.get("manifest") or current["env"] != info.get("env"):
        return None
    checked = next(r for r in server_releases(host, s, "current")["releases"] if r["current"])
    damaged = releases.damage_summary(checked, front(s))
    if damaged:   # nothing new to ship, but a new release repairs it
        host.say(f"release {current['id']} holds this commit and export but is damaged ({damaged}): making a new one")
        return None
    return current["id"]


def new_release(host, s, rid: str, sha: str) -> Optional[str]:
    """releases/<rid>/ with the backend's files at commit `sha`, taken from the server's clone (git archive), after
    removing what unfinished releases left."""
    left = agent(host, s, "clean", sudo=True).get("removed") or []
    if left:
        host.say(f"removed unfinished release(s) a failed or killed run left: {', '.join(left)}")
    directory = plan.release_dir(s, rid)
    made = host.run(f"mkdir -m 755 {shlex.quote(directory)} && "
                    + clone.archive_command(s.app_root, sha, plan.code_paths(s), directory), warn=True)
    if made is None:
        host.say(f"would make release {rid} from commit {sha[:7]}")
        return None
    if made.failed:
        raise UserError(f"[{host.name}] cannot make release {rid} from commit {sha[:7]}: "
                        f"{clone.last_error(made.stderr)}")
    return f"release {rid} ({sha[:7]})"


def checked_export(s):
    """The export's build-info, after checking it belongs to this environment and was not changed since."""
    export = releases.local_export(s)
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
    found = server_releases(host, s, "current")   # hashes the served export: a damaged file is sent, not linked
    base = next((r for r in found["releases"] if r["current"]), None)
    base_manifest = releases.decode_manifest(base) if base else None
    damaged = releases.to_resend(base.get("damage") or {}, info["manifest"], base_manifest) if base else []
    changed, removed = releases.plan_upload(info["manifest"], base_manifest, tuple(damaged))
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
                 f"{upload_plan['base'] or 'no served release'}"
                 + (f", and send {releases.count(len(damaged), 'damaged file')} of it again" if damaged else ""))
        return None
    answer = remote.parse_answer(stdout)
    if "error" in answer:
        raise UserError(f"[{host.name}] upload refused: {answer['error']}")
    host.say(f"export: sent {label} in {time.monotonic() - started:.1f} s, reused "
             f"{releases.count(answer['linked'], 'unchanged file')} from {answer['base'] or 'nothing'}")
    if damaged:
        host.say(f"repaired {releases.count(len(damaged), 'damaged file')} of release {base['id']} "
                 f"({', '.join(damaged[:3])}{' ...' if len(damaged) > 3 else ''}): sent again, not linked")
    return f"export: {label} sent" if changed else None


def seal(host, s, rid: str, sha: str) -> None:
    """Mark release `rid` complete: only a sealed release can be served, rolled back to, or kept."""
    export, info = checked_export(s)
    # the backend code's hashes, for `releases --verify` and rollback: what git archive made, not what the
    # deploy added inside it since (the venv, the collected static files)
    code = {"paths": plan.code_paths(s), "skipped": [plan.release_links(s)["venv"],
                                                      posixpath.normpath(posixpath.join(s.backend.dir,
                                                                                        s.backend.static_dir))]}
    agent(host, s, "seal", rid, plan.socket_path(s, rid),
          json.dumps({"commit": sha, "frontend_commit": info.get("git_sha"), "env": s.env,
                      "links": plan.release_links(s), "code": code}))


def refuse_damaged(host, s, target: str) -> None:
    """Before a rollback serves `target`: refuse it when damaged, naming the nearest sound kept release. Every
    release is checked by existence and size, only the target by hash (and, once it is found damaged, the others
    it could name instead)."""
    rows = server_releases(host, s, target)["releases"]
    damaged = releases.damage_summary(next(r for r in rows if r["id"] == target), front(s))
    if not damaged:
        return
    candidates = records.nearest_sound(rows, target)
    hashed = server_releases(host, s, *candidates)["releases"] if candidates else rows
    instead = records.nearest_sound(hashed, target)
    advice = f"roll back to {instead[0]} instead (`rollback --to {instead[0]}`), the nearest sound one" if instead \
        else "no other kept release is sound: deploy again"
    raise UserError(f"[{host.name}] release {target} is damaged ({damaged}): {advice}")


def switch(host, s, rid: str) -> Optional[str]:
    """Serve release `rid` (one rename of `current`); returns the release it replaced."""
    answer = agent(host, s, "switch", rid, front(s))
    return answer.get("previous")


def prune(host, s, protected: tuple = ()) -> list[str]:
    """Remove releases beyond qms.keep_releases, oldest first; never the served one or `protected`."""
    return agent(host, s, "prune", s.keep_releases, *[p for p in protected if p], sudo=True).get("pruned") or []


def server_state(host, s) -> dict:
    """What the server serves now: the release `current` points at, and its backend commit."""
    rid = service.served(host, s)
    info = host.read(f"{s.app_root}/releases/{rid}/release.json") if rid else None
    try:
        commit = json.loads(info).get("commit", "") if info else ""
    except ValueError:
        commit = ""
    return {"release": rid, "commit": commit}


def switch_step(host, s, rid: str) -> Optional[str]:
    """Serve the new release: one rename moves frontend and backend together."""
    if host.dry:
        host.say(f"would switch {s.app_root}/current to release {rid}")
        return None
    previous = switch(host, s, rid)
    host.say(f"{s.app_root}/current: {previous or 'nothing'} -> {rid}")
    return f"{previous or 'nothing'} -> {rid}"


def standby(host, s) -> Optional[str]:
    """The release whose backend stays warm beside the served one (qms.backend.standby): where a plain rollback
    goes."""
    return records.release_before(server_releases(host, s)["releases"]) if s.backend.standby else None


def retire_step(host, s, before: dict) -> Optional[str]:
    """After the new release passed the smoke checks: prune old releases, and stop every backend instance but the
    served one and the standby. Decided from what runs, so what a killed run left running stops too."""
    if host.dry:
        return None
    pruned = prune(host, s, protected=(before.get("release"),))
    if pruned:
        host.say(f"pruned release(s) {', '.join(pruned)} (qms.keep_releases: {s.keep_releases})")
    warm = standby(host, s)
    stopped = service.stop_strays(host, s, {service.served(host, s), warm})
    if warm:
        host.say(f"release {warm}'s backend stays warm for a rollback (qms.backend.standby)")
    return f"stopped {', '.join(stopped)}" if stopped else None


def release_steps(host, s, sha: str, rid: str, run, already: Optional[str]):
    """The steps that ship commit `sha` with the local export (built by then): a new release `rid` made complete
    and verified beside the served one (migrations included) up to its start and the switch; or, when the served
    release holds both already (`already`), only the .env and units, and a restart if they changed. What setup and
    deploy share; `run` is the chain's Run (its outcome gets the migration's backup)."""
    yield ("env", envfile.write_env, host, s)
    if already:
        yield ("service", service.service_step, host, s, already)
        yield ("restart", service.restart_if_changed, host, s, already, run.changed)
        return
    yield from [("git-pull", git_pull, host, s, None, sha),
                ("release", new_release, host, s, rid, sha), ("deps", backend.deps, host, s, rid),
                ("upload", upload_export, host, s, rid),
                ("app-settings", backend.app_settings_step, host, s, rid),
                ("migrate", backend.migrate_step, host, s, rid, run.outcome),
                ("collectstatic", backend.collectstatic, host, s, rid),
                ("seal", seal, host, s, rid, sha), ("service", service.service_step, host, s, rid),
                ("start", service.start, host, s, rid), ("switch", switch_step, host, s, rid)]


def put_back(host, s, before: dict, new: Optional[str] = None) -> Optional[str]:
    """Serve `before`'s release again: started (no git, no uv, no network), checked on its own socket, switched to,
    and the release that replaced it (`new`, or the one served now) stopped. The database is left as it is.
    Returns what was put back."""
    wanted, now = before.get("release"), service.served(host, s)
    if not wanted or wanted == now:
        if new and new != now:
            service.stop(host, s, new)
        return None
    if host.dry:
        host.say(f"would start release {wanted}, switch to it and stop {now}")
        return None
    if service.is_warm(host, s, wanted):
        host.say(f"release {wanted}'s backend is running and healthy: switching to it")
    else:
        service.start(host, s, wanted)
    switch(host, s, wanted)
    if now:
        service.stop(host, s, now)
    smoke_check(host, s, strict=True)
    return f"release {wanted}"


def discard(host, s, rid: str) -> None:
    """A release that never served: its instance stopped, its directory removed."""
    service.stop(host, s, rid)
    agent(host, s, "discard", rid, sudo=True)


def discard_unserved(host, s, run, rid: str, before: dict) -> str:
    """After a failure before the switch: release `rid` removed if the run began it; what the error adds ('' when
    there was nothing to remove)."""
    if not run.changed("release"):
        return ""
    discard(host, s, rid)
    return f"release {rid} was discarded: the site still serves {before.get('release') or 'nothing yet'}"


def put_back_after_failure(host, s, before: dict, new: Optional[str]) -> Optional[str]:
    """After a failure at or after the switch: the journal of the release that failed, then `before` served again."""
    print(service.journal_tail(host, s, new or "*", 20), end="")
    return put_back(host, s, before, new)


@task(name="releases", help={"verify": "hash every release's files against its manifests instead of listing: one "
                                        "line per damaged release, a non-zero exit when any is"})
@read_only
def list_releases(c, verify=False):
    """List the releases on the server; the served one marked *.

    List the whole-app releases on the server (id, backend commit, frontend build, age, size), the served one marked
    with *. rollback --to takes an id from here. --verify checks them instead: each release's frontend export and
    backend code against what was recorded when it was made.
    """
    s = settings_of(c)
    host = host_of(c, s)
    if verify:
        return verify_releases(host, s)
    found = server_releases(host, s, sizes=True)
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


def verify_releases(host, s) -> None:
    """`releases --verify`: every file of every release hashed, the damaged releases named."""
    started = time.monotonic()
    rows = server_releases(host, s, "*")["releases"]
    lines = releases.verify_report(rows, front(s))
    for line in lines:
        print(line)
    took = time.monotonic() - started
    if lines:
        raise UserError(f"[{host.name}] {releases.count(len(lines), 'release')} of {len(rows)} damaged: an upload or "
                        "deploy sends the served one's damaged files again; rollback refuses a damaged one")
    print(f"all {releases.count(len(rows), 'release')} match what was recorded when each was made "
          f"({releases.count(sum(r['files'] for r in rows), 'export file')} hashed, in {took:.1f} s)")


ns = Collection(list_releases)
