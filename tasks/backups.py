"""Database backups (guide section 1: SQLite backed up locally and to S3). A copied live SQLite file can be corrupt
and still look fine, and a backup nobody restored is not a backup: every backup is made with SQLite's online backup
API, checked with PRAGMA integrity_check, compressed and checksummed; a restore checks it again before it touches
the live database, keeps a copy of what it replaces, and puts it back if the app does not come up."""
import posixpath
import shlex
import time
from datetime import datetime
from pathlib import Path

from invoke import Collection, task
from rich.table import Table

from . import remote
from .core import backend_plan as plan
from .core.bundle import file_digest
from .core import s3
from .core.console import print_table
from .core.errors import UserError
from .core.host import transfer_progress
from .core.local_files import read_text, write_text
from .core.releases import human_size
from .core.runtime import host_of, settings_of
from .core.templates import render_template
from .service import served_release, wait_healthy
from .lock import locked, read_only

SUFFIX = ".sqlite3.gz"
AGENT_ON_SERVER = "/usr/local/lib/qms-deploy/backup_agent.py"   # for the timer, which has no fab to send it


def backup_dir(s) -> str:
    return posixpath.join(s.app_root, "backups")


def local_dir(s) -> Path:
    return s.local_path(s.backups.local_dir.format(env=s.env))


def agent(host, s, *args, sudo=False) -> dict:
    return remote.ask(host, "backup_agent", *args, sudo=sudo, timeout=host.long_timeout)


def create_backup(host, s, reason: str, protect: str = "", database: str = "") -> dict:
    """A checked, compressed backup on the server ({} under --dry) of the app's database (or `database`);
    retention never removes `protect`."""
    # as root: the database is the app's user's alone (0600 in a 0700 directory)
    made = agent(host, s, "create", database or plan.database_path(s), backup_dir(s), reason, s.backups.keep,
                 s.backups.max_age_days, protect, sudo=True)
    if made:
        host.say(f"backup {made['id']}: {human_size(made['size'])}, sha256 {made['sha256'][:12]}, integrity_check ok"
                 + (f"; removed old: {', '.join(made['pruned'])}" if made["pruned"] else ""))
    return made


def fetch(host, s, bid: str, sha: str) -> Path:
    """Download a server backup (and its checksum) into the local backups directory, checked."""
    directory = local_dir(s)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = directory / f"{bid}{SUFFIX}"
    remote_path = posixpath.join(backup_dir(s), bid + SUFFIX)
    host.conn.get(remote_path, str(target))
    target.chmod(0o600)
    if file_digest(target) != sha:
        target.unlink()
        raise UserError(f"the download of {bid} does not match its checksum: try again")
    write_text(directory / f"{bid}{SUFFIX}.sha256", f"{sha}  {bid}{SUFFIX}\n")
    return target


def send(host, s, path: Path, bid: str, sha: str) -> None:
    """Put a local backup into the server's backups directory, so the restore there can check and use it."""
    base = posixpath.join(backup_dir(s), bid + SUFFIX)
    host.put(base, path.read_bytes(), 0o600, s.user, show_diff=False)
    host.put(base + ".sha256", f"{sha}  {bid}{SUFFIX}\n", 0o600, s.user, show_diff=False)


def local_backups(s) -> list[dict]:
    rows = []
    for path in sorted(local_dir(s).glob(f"*{SUFFIX}")):
        checksum = path.with_name(path.name + ".sha256")
        rows.append({"id": path.name[: -len(SUFFIX)], "size": path.stat().st_size,
                     "sha256": read_text(checksum).split()[0] if checksum.exists() else None, "path": path})
    return rows


def s3_backups(s, required: bool = False) -> list[dict]:
    """The backups in S3; [] when S3 is not set up, unless `required` (then that is the error)."""
    if not (required or s3.configured(s)):
        return []
    return [{"id": posixpath.basename(o["key"])[: -len(SUFFIX)], "size": o["size"], "sha256": o["sha256"],
             "key": o["key"]} for o in s3.listing(s)]


def schedule_units(s) -> dict[str, str]:
    context = {"unit": "qms-backup", "database": plan.database_path(s), "directory": backup_dir(s),
               "agent": AGENT_ON_SERVER, "keep": s.backups.keep,
               "max_age_days": s.backups.max_age_days, "calendar": s.backups.schedule}
    return {kind: render_template("systemd", f"backup.{kind}.j2", context) for kind in ("service", "timer")}


def install_schedule(host, s, on: bool) -> None:
    paths = {kind: f"/etc/systemd/system/qms-backup.{kind}" for kind in ("service", "timer")}
    if on:
        host.ensure_dir(posixpath.dirname(AGENT_ON_SERVER), 0o755, "root")
        host.put(AGENT_ON_SERVER, read_text(remote.HERE / "backup_agent.py"), 0o755, "root", show_diff=False)
        changed = [host.put(paths[kind], text, 0o644, "root") for kind, text in schedule_units(s).items()]
        if any(changed):
            host.sudo("systemctl daemon-reload")
        host.sudo("systemctl enable -q --now qms-backup.timer")
        host.say(f"backups scheduled ({s.backups.schedule}): systemctl list-timers qms-backup.timer")
    else:
        host.sudo("systemctl disable -q --now qms-backup.timer 2>/dev/null; rm -f -- "
                  + " ".join(shlex.quote(p) for p in paths.values()) + " && systemctl daemon-reload")
        host.say("scheduled backups removed")


@task(help={"download": "also keep a copy on this machine (qms.backups.local_dir)",
            "schedule": "install a systemd timer on the server (qms.backups.schedule) instead of backing up now",
            "unschedule": "remove that timer"})
@locked()
def backup(c, download=False, schedule=False, unschedule=False):
    """Back up the database (checked, gzip, sha256; S3 if set).

    Back up the server's SQLite database (online, integrity-checked, gzip, sha256); to S3 when configured.
    """
    s = settings_of(c)
    host = host_of(c, s)
    if schedule or unschedule:
        install_schedule(host, s, on=schedule)
        return
    made = create_backup(host, s, "manual")
    if not made or not (download or s3.configured(s)):
        return
    local = fetch(host, s, made["id"], made["sha256"])
    if download:
        host.say(f"downloaded to {local}")
    if s3.configured(s):
        started = time.monotonic()
        with transfer_progress(made["size"], f"S3 upload of {made['id']}") as advance:
            key = s3.upload(s, local, local.name, made["sha256"], advance)
        host.say(f"uploaded to s3://{s.backups.s3.bucket}/{key} in {time.monotonic() - started:.1f} s "
                 f"(checksum verified, encryption {s.backups.s3.sse})")
        if not download:
            local.unlink()
            local.with_name(local.name + ".sha256").unlink()


@task(name="backups")
@read_only
def list_backups(c):
    """List backups on the server, here and in S3.

    List the database backups on the server, on this machine and in S3 (id, time, size, checksum, where).
    """
    s = settings_of(c)
    host = host_of(c, s)
    places = {"server": agent(host, s, "list", backup_dir(s)).get("backups", []), "local": local_backups(s),
              "s3": s3_backups(s)}
    merged: dict = {}
    for where, rows in places.items():
        for row in rows:
            entry = merged.setdefault(row["id"], {**row, "where": []})
            entry["where"].append(where)
    table = Table(title=f"database backups of {s.env}")
    for column in ("id", "time (UTC)", "size", "sha256", "where"):
        table.add_column(column)
    for bid in sorted(merged):
        row = merged[bid]
        when = datetime.strptime(bid[:15], "%Y%m%d-%H%M%S").strftime("%Y-%m-%d %H:%M:%S") if bid[:15].replace(
            "-", "").isdigit() else "?"
        table.add_row(bid, when, human_size(row["size"]), (row["sha256"] or "?")[:12], ", ".join(row["where"]))
    print_table(table)


@task(positional=["backup"], help={"backup": "the backup id (see `backups`), or latest",
                                  "from": "where the backup is: server (default), local or s3"})
@locked()
def restore(c, backup, from_="server"):
    """Restore the database from a checked backup (undo on failure).

    Restore the database from a checked backup; the current one is saved first and put back if the app fails.
    """
    s = settings_of(c)
    if from_ not in ("server", "local", "s3"):
        raise UserError(f"--from must be server, local or s3, not {from_!r}")
    return restore_backup(host_of(c, s), s, backup, from_)


def restore_backup(host, s, backup: str, source: str = "server"):
    """The database from backup `backup` (an id or latest) in `source`, checked first; the served release stopped
    meanwhile, the current database saved and put back if the app does not come up."""
    rows = {"server": lambda: agent(host, s, "list", backup_dir(s)).get("backups", []),
            "local": lambda: local_backups(s), "s3": lambda: s3_backups(s, required=True)}[source]()
    if not rows:
        raise UserError(f"no backups {'on the server' if source == 'server' else 'in ' + source}: run backup first")
    chosen = max(rows, key=lambda r: r["id"]) if backup == "latest" else next(
        (r for r in rows if r["id"] == backup), None)
    if chosen is None:
        raise UserError(f"no backup {backup} in {source}: `backups` lists them")
    bid = chosen["id"]
    if source == "s3":
        directory = local_dir(s)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        chosen["path"] = directory / f"{bid}{SUFFIX}"
        chosen["sha256"] = s3.download(s, chosen["key"], chosen["path"])
    if source != "server":
        if not chosen["sha256"] or file_digest(chosen["path"]) != chosen["sha256"]:
            raise UserError(f"backup {bid} does not match its checksum: it is damaged; nothing was changed")
        send(host, s, chosen["path"], bid, chosen["sha256"])
    agent(host, s, "check", backup_dir(s), bid)   # checksum and integrity, before anything changes
    host.say(f"backup {bid} passes its checksum and integrity_check")
    release = served_release(host, s)
    name = plan.instance(s, release)
    if host.dry:
        host.say(f"would stop {name}, save the current database, restore {bid}, start and check health")
        return None
    unit = shlex.quote(name)
    # stopped before the safety copy: nothing the app writes can fall between the copy and the restore
    host.sudo(f"systemctl stop {unit}.socket {unit}.service")
    saved: dict = {}
    try:
        saved = create_backup(host, s, "pre-restore", protect=bid)
        agent(host, s, "restore", plan.database_path(s), backup_dir(s), bid, sudo=True)
        host.sudo(f"systemctl start {unit}.socket {unit}.service")
        wait_healthy(host, s, release, replaced=frozenset())
    except UserError as failure:
        try:
            if saved:
                host.say(f"putting the previous database back ({saved['id']})")
                host.sudo(f"systemctl stop {unit}.socket {unit}.service")
                agent(host, s, "restore", plan.database_path(s), backup_dir(s), saved["id"], sudo=True)
        finally:   # whatever happened, the app serves again
            host.sudo(f"systemctl start {unit}.socket {unit}.service", warn=True)
        raise UserError(f"[{host.name}] restore of {bid} failed and was undone: {failure.reason}") from None
    host.say(f"database restored from {bid} (the one it replaced is backup {saved.get('id', 'none')}); "
             f"{name} is healthy")
    return f"database from backup {bid}"


ns = Collection(backup, list_backups, restore)
