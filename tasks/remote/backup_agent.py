"""Runs ON THE SERVER (python3 -c, standard library only): SQLite backups.

  create  DB DIR REASON KEEP MAX_AGE_DAYS [PROTECT]  an online copy (SQLite's backup API, never a plain copy of a live file),
                                         PRAGMA integrity_check on the copy, gzip, a .sha256 beside it; retention
  list    DIR                            the backups, as JSON
  check   DIR ID                         checksum and integrity of one backup
  restore DB DIR ID                      replace the database by a checked backup (the caller stops the service and
                                         takes a backup of the current database first)

A backup is DIR/<id>.sqlite3.gz with DIR/<id>.sqlite3.gz.sha256; id = <UTC time>-<reason>.
"""
import gzip
import hashlib
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import urllib.parse

SUFFIX = ".sqlite3.gz"


def answer(**fields):
    print(json.dumps(fields))
    sys.exit(0 if "error" not in fields else 1)


def sha256_of(path):
    # each agent travels alone (python3 -c), so it carries its own copy of this helper
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_only(path):
    """A read-only connection: mode=ro never creates a missing file, and the path is escaped so that a `#`, `?`
    or `%` in it cannot end the path early (sqlite would then open, and create, another file)."""
    return sqlite3.connect("file:%s?mode=ro" % urllib.parse.quote(os.path.abspath(path)), uri=True)


def integrity(path):
    con = read_only(path)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.DatabaseError as e:
        return str(e)
    finally:
        con.close()


def listing(directory):
    rows = []
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        if name.endswith(SUFFIX):
            path = os.path.join(directory, name)
            try:
                with open(path + ".sha256") as f:
                    recorded = f.read().split()[0]
            except (OSError, IndexError):
                recorded = None
            rows.append({"id": name[: -len(SUFFIX)], "size": os.path.getsize(path), "sha256": recorded,
                         "mtime": os.path.getmtime(path)})
    return rows


def create(database, directory, reason, keep, max_age_days, protect=""):
    os.umask(0o077)   # a database copy is as secret as the database
    if not os.path.isfile(database):
        answer(error="no database at %s yet" % database)
    bid = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + reason
    target = os.path.join(directory, bid + SUFFIX)
    raw = None
    try:
        os.makedirs(directory, exist_ok=True)
        fd, raw = tempfile.mkstemp(dir=directory, prefix=".backup-", suffix=".sqlite3")
        os.close(fd)
        src = read_only(database)
        dst = sqlite3.connect(raw)
        src.backup(dst)
        src.close()
        dst.close()
        verdict = integrity(raw)
        if verdict != "ok":
            answer(error="the copy fails PRAGMA integrity_check: %s" % verdict)
        with open(raw, "rb") as plain, gzip.open(target + ".part", "wb", compresslevel=6) as packed:
            shutil.copyfileobj(plain, packed, 1 << 20)
        digest = sha256_of(target + ".part")
        with open(target + ".sha256", "w") as f:
            f.write("%s  %s\n" % (digest, os.path.basename(target)))
        os.replace(target + ".part", target)
        owner = os.stat(directory)
        if os.geteuid() == 0:   # root reads the app's database; the backups stay the deploy user's
            for made in (target, target + ".sha256"):
                os.chown(made, owner.st_uid, owner.st_gid)
    except (OSError, sqlite3.Error) as e:   # a full disk lands here (sqlite: "database or disk is full")
        for leftover in (target + ".part", target + ".sha256"):
            if os.path.exists(leftover):
                os.unlink(leftover)
        answer(error="cannot back up %s into %s: %s" % (database, directory, getattr(e, "strerror", None) or e))
    finally:
        if raw and os.path.exists(raw):
            os.unlink(raw)
    answer(id=bid, size=os.path.getsize(target), sha256=digest,
           pruned=prune(directory, keep, max_age_days, {bid, protect}))


def prune(directory, keep, max_age_days, spared):
    """Keep the newest `keep`; of those, drop any older than max_age_days (0: no age limit). Never one in `spared`
    (the new backup, and the one a restore is about to use)."""
    rows = sorted(listing(directory), key=lambda r: r["id"])
    doomed = rows[:-keep] if keep and len(rows) > keep else []
    if max_age_days:
        limit = time.time() - max_age_days * 86400
        doomed += [r for r in rows[-keep:] if r["mtime"] < limit]
    doomed = [r for r in doomed if r["id"] not in spared]
    for row in doomed:
        for path in (row["id"] + SUFFIX, row["id"] + SUFFIX + ".sha256"):
            if os.path.exists(os.path.join(directory, path)):
                os.unlink(os.path.join(directory, path))
    return [r["id"] for r in doomed]


def unpack_checked(directory, bid, into_dir):
    """A checked, decompressed copy of backup `bid` in `into_dir` (same file system as its destination)."""
    path = os.path.join(directory, bid + SUFFIX)
    if not os.path.isfile(path):
        answer(error="no backup %s in %s" % (bid, directory))
    try:
        with open(path + ".sha256") as f:
            recorded = f.read().split()[0]
    except (OSError, IndexError):
        answer(error="backup %s has no checksum file: refusing it" % bid)
    if sha256_of(path) != recorded:
        answer(error="backup %s does not match its checksum: it is damaged" % bid)
    fd, plain = tempfile.mkstemp(dir=into_dir, prefix=".restore-", suffix=".sqlite3")
    os.close(fd)
    try:
        with gzip.open(path, "rb") as packed, open(plain, "wb") as out:
            shutil.copyfileobj(packed, out, 1 << 20)
    except (OSError, EOFError) as e:
        os.unlink(plain)
        answer(error="backup %s cannot be decompressed: %s" % (bid, e))
    verdict = integrity(plain)
    if verdict != "ok":
        os.unlink(plain)
        answer(error="backup %s fails PRAGMA integrity_check: %s" % (bid, verdict))
    return plain


def restore(database, directory, bid):
    plain = unpack_checked(directory, bid, os.path.dirname(database))
    stat = os.stat(database) if os.path.exists(database) else None
    if stat:
        os.chown(plain, stat.st_uid, stat.st_gid)
        os.chmod(plain, stat.st_mode & 0o777)
    for extra in ("-wal", "-shm", "-journal"):   # they belong to the database being replaced
        if os.path.exists(database + extra):
            os.unlink(database + extra)
    os.replace(plain, database)
    answer(id=bid, integrity=integrity(database))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "create":
        create(args[0], args[1], args[2], int(args[3]), int(args[4]), *args[5:6])
    elif command == "list":
        answer(backups=listing(args[0]))
    elif command == "check":
        os.unlink(unpack_checked(args[0], args[1], args[0]))
        answer(id=args[1], integrity="ok")
    elif command == "restore":
        restore(args[0], args[1], args[2])
    else:
        answer(error="unknown command " + command)
