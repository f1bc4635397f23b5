"""Runs ON THE SERVER (python3 -c, standard library only): whole-app releases.

  clean    remove what unfinished releases left (no release.json): a deploy that failed or was killed (as root:
           collectstatic's files belong to the app's user until the release is sealed)
  receive  read one tar stream from stdin into RELEASES/<id>/<frontend>: a plan (what differs from the served
           release's export), then only the changed files; link the unchanged ones; verify everything against the
           rebuilt manifest; files 644 and directories 755 from creation
  seal     mark a release complete: its socket link and release.json (written last), which records the backend
           code's files and hashes (a fresh git archive, not shared) so that a later check can verify it
  switch   point `current` at a sealed, verified release with one rename(2): nginx and systemd see the app only
           through it, so frontend and backend change together
  prune    remove the oldest sealed releases beyond a number, never the served one or those named (as root)
  discard  remove a release that never served (it failed its checks), never the served one (as root)
  list     the releases, as JSON (with `sizes`: the disk each one adds); given ids (or `current`, or `*`), also each release's damage: every file
           against its manifest by existence and size, and by hash for the releases named

Layout: APP/releases/<id>/ one per deploy, APP/current -> releases/<id> (relative symlink), and
APP/<frontend>/<out> -> ../current/<frontend>/<out> so that the guide's path still serves.
"""
import base64
import hashlib
import json
import os
import shutil
import stat
import sys
import tarfile
import time
import zlib

SEALED = "release.json"
INCOMING = ".incoming"


def fail(message):
    print(json.dumps({"error": message}))
    sys.exit(1)


def digest(path):
    # each agent travels alone (python3 -c), so it carries its own copy of this helper
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def current_id(app):
    link = os.path.join(app, "current")
    return os.path.basename(os.readlink(link).rstrip("/")) if os.path.islink(link) else None


def checked_id(rid):
    if not rid or "/" in rid or rid.startswith("."):
        fail("not a release id: %r" % rid)
    return rid


def safe_join(root, rel):
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        fail("unsafe path in upload: %r" % rel)
    return os.path.join(root, *parts)


def release_info(release):
    try:
        with open(os.path.join(release, SEALED)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def releases(root):
    """Sealed releases, oldest first, by when each was sealed (ids made within one second do not sort by name)."""
    names = [n for n in os.listdir(root) if not n.startswith(".") and release_info(os.path.join(root, n)) is not None]
    return sorted(names, key=lambda n: (os.stat(os.path.join(root, n, SEALED)).st_mtime_ns, n))


def canonical(manifest):
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def read_manifest(export):
    try:
        with open(os.path.join(export, "build-info.json")) as f:
            return json.load(f).get("manifest", {})
    except (OSError, ValueError):
        return {}


def clean(app):
    root = os.path.join(app, "releases")
    current = current_id(app)
    removed = []
    for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        path = os.path.join(root, name)
        if name != current and os.path.isdir(path) and release_info(path) is None:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name)
    print(json.dumps({"removed": removed}))


def receive(app, rid, front):
    os.umask(0o022)   # files 644 and directories 755 as they are created: no chmod pass afterwards
    root = os.path.join(app, "releases")
    export = safe_join(os.path.join(root, checked_id(rid)), front)
    stream = tarfile.open(fileobj=sys.stdin.buffer, mode="r|gz")
    first = stream.next()   # stream.next(), not iteration: a stream cannot seek back to re-read members
    if first is None or first.name != ".qms-plan.json":
        fail("the upload stream does not start with a plan")
    plan = json.loads(stream.extractfile(first).read())
    base, changed = plan.get("base"), plan["changed"]
    base_export = safe_join(os.path.join(root, base), front) if base else None
    # The client sends only what differs from the base release; the whole manifest is rebuilt here and must hash
    # to what the client built, or the base changed under us.
    manifest = read_manifest(base_export) if base else {}
    for rel in plan["removed"]:
        manifest.pop(rel, None)
    manifest.update(changed)
    if canonical(manifest) != plan["manifest_sha"]:
        fail("the server's current release is not the one this upload was planned against: upload again")
    if os.path.exists(export):
        shutil.rmtree(export)   # a retried step of the same (unsealed) release
    incoming = export + INCOMING
    shutil.rmtree(incoming, ignore_errors=True)
    os.makedirs(incoming)
    made = {incoming}
    try:
        linked = 0
        for rel in manifest:
            if rel not in changed:
                dest = safe_join(incoming, rel)
                make_parents(dest, made)
                try:
                    os.link(os.path.join(base_export, *rel.split("/")), dest)   # same content: share it, send nothing
                except FileNotFoundError:   # deleted since the client checked the base (it re-sends what is missing)
                    fail("%s of release %s vanished during the upload: upload again" % (rel, base))
                linked += 1
        received = 0
        for member in iter(stream.next, None):
            if not member.isfile() or member.name not in changed:
                fail("unexpected entry in the upload: %r" % member.name)
            dest = safe_join(incoming, member.name)
            make_parents(dest, made)
            h, source = hashlib.sha256(), stream.extractfile(member)
            with open(dest, "xb") as f:   # a new inode: never one shared with an older release
                for block in iter(lambda: source.read(1 << 20), b""):
                    h.update(block)
                    f.write(block)
            if [h.hexdigest(), member.size] != list(changed[member.name]):
                fail("%s arrived damaged" % member.name)
            received += 1
        problems = verify(incoming, manifest, skip=changed)
        if problems:
            fail("the export of release %s does not match its manifest: %s" % (rid, described(problems)))
        with open(os.path.join(incoming, "build-info.json"), "w") as f:
            f.write(json.dumps(dict(plan["info"], manifest=manifest), indent=1, sort_keys=True) + "\n")
        os.rename(incoming, export)
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    print(json.dumps({"id": rid, "base": base, "linked": linked, "received": received}))


def make_parents(path, made):
    parent = os.path.dirname(path)
    if parent not in made:
        os.makedirs(parent, exist_ok=True)
        made.add(parent)


def verify(root, manifest, skip=(), hashed=True, strays=True):
    """[kind, path] for each file that is not as `manifest` says: "missing", "differs" (by size; by hash too when
    `hashed`, except `skip`: hashed already while they were written) and, when `strays`, "unexpected"."""
    problems = []
    for dirpath, _, names in os.walk(root) if strays else ():
        for name in names:
            rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
            if rel not in manifest and rel != "build-info.json":   # the manifest's own file
                problems.append(["unexpected", rel])
    for rel, (sha, size) in sorted(manifest.items()):
        path = os.path.join(root, *rel.split("/"))
        try:
            st = os.stat(path)   # one stat: the quick check costs little beside the listing's own walk
        except OSError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode):
            problems.append(["missing", rel])
        elif st.st_size != size or (hashed and rel not in skip and digest(path) != sha):
            problems.append(["differs", rel])
    return problems


def described(problems, limit=5):
    return "; ".join("%s %s" % (kind, rel) for kind, rel in problems[:limit]) + (
        " and %d more" % (len(problems) - limit) if len(problems) > limit else "")


def code_manifest(release, paths, skipped):
    """{path: [sha256, size]} of the backend's regular files (what git archive made), without what the deploy
    adds beside them (the venv, collected static files, bytecode caches: `skipped`)."""
    manifest = {}
    for top in paths:
        for dirpath, dirs, names in os.walk(os.path.join(release, top)):
            rel_dir = os.path.relpath(dirpath, release).replace(os.sep, "/")
            dirs[:] = sorted(d for d in dirs if d != "__pycache__" and posix_join(rel_dir, d) not in skipped)
            for name in names:
                path = os.path.join(dirpath, name)
                if os.path.isfile(path) and not os.path.islink(path):
                    manifest[posix_join(rel_dir, name)] = [digest(path), os.path.getsize(path)]
    return manifest


def posix_join(rel_dir, name):
    return name if rel_dir == "." else rel_dir + "/" + name


def damage(release, front, hashed):
    """What is wrong in a sealed release: its export against its manifest, its backend code against the one
    recorded at seal time (releases sealed before that record have none to check)."""
    export = safe_join(release, front)
    has_manifest = os.path.isfile(os.path.join(export, "build-info.json"))
    found = {"export": verify(export, read_manifest(export), hashed=hashed) if has_manifest
             else [["missing", "build-info.json"]]}
    code = (release_info(release) or {}).get("backend_manifest")
    if code is not None:
        found["backend"] = verify(release, code, hashed=hashed, strays=False)
    return found


def seal(app, rid, socket, info):
    release = os.path.join(app, "releases", checked_id(rid))
    if not os.path.isdir(release):
        fail("there is no release %s to seal" % rid)
    data = dict(json.loads(info), id=rid, sealed_at=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
    code = data.pop("code", None)
    if code:
        data["backend_manifest"] = code_manifest(release, code["paths"], set(code["skipped"]))
    # the units and nginx reach a release only through these links, so they hold no path that a release's
    # settings (where manage.py or the venv is) could change under an older release
    links = dict(data.pop("links", {}), **{"backend.sock": socket})
    for name, target in links.items():
        link = os.path.join(release, name)
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(target, link)
    temp = os.path.join(release, SEALED + ".tmp")
    with open(temp, "w") as f:
        f.write(json.dumps(data, indent=1, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.rename(temp, os.path.join(release, SEALED))   # written last: a release without it was never finished
    print(json.dumps({"id": rid}))


def replace_link(path, target):
    temp = path + ".qms-new"
    if os.path.lexists(temp):
        os.unlink(temp)
    os.symlink(target, temp)
    os.replace(temp, path)


def switch(app, rid, front):
    """Serve a sealed release, after checking its export is whole; the guide's frontend path follows."""
    release = os.path.join(app, "releases", checked_id(rid))
    if release_info(release) is None:
        fail("there is no complete release %s on the server (older ones are pruned)" % rid)
    export = safe_join(release, front)
    problems = verify(export, read_manifest(export)) if os.path.isdir(export) else [["missing", "frontend export"]]
    if problems:
        fail("release %s is damaged (%s): it cannot be served" % (rid, described(problems, 1)))
    previous = current_id(app)
    if previous != rid:
        replace_link(os.path.join(app, "current"), os.path.join("releases", rid))
    guide_path = safe_join(app, front)
    wanted = os.path.relpath(os.path.join(app, "current", front), os.path.dirname(guide_path))
    if os.path.isdir(guide_path) and not os.path.islink(guide_path):   # the guide's own export, kept aside
        os.rename(guide_path, guide_path + ".before-releases")
    if not os.path.islink(guide_path) or os.readlink(guide_path) != wanted:
        os.makedirs(os.path.dirname(guide_path), exist_ok=True)
        replace_link(guide_path, wanted)
    print(json.dumps({"id": rid, "previous": previous}))


def prune(app, keep, protected):
    root = os.path.join(app, "releases")
    names = releases(root)
    spared = {current_id(app), *protected}
    doomed = [n for n in names[:-keep] if n not in spared] if len(names) > keep else []
    for name in doomed:
        os.unlink(os.path.join(root, name, SEALED))   # unsealed first: a half-removed release is a leftover
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    print(json.dumps({"pruned": doomed}))


def discard(app, rid):
    release = os.path.join(app, "releases", checked_id(rid))
    if rid == current_id(app):
        fail("release %s is the one served: it cannot be discarded" % rid)
    if os.path.lexists(os.path.join(release, SEALED)):
        os.unlink(os.path.join(release, SEALED))
    shutil.rmtree(release, ignore_errors=True)
    print(json.dumps({"discarded": rid}))


def unique_size(path, seen):
    """Bytes of the files under `path` whose inodes no release listed before it holds (hard links count once)."""
    total = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def listing(app, front, sizes, checked=()):
    """The sealed releases; with `sizes`, the disk each adds (a walk of every file: the listing's slow part); when
    `checked` names any (ids, `current`, `*`), every release's damage too, hashed for those named."""
    root = os.path.join(app, "releases")
    current = current_id(app)
    hashed = {current if c == "current" else c for c in checked}
    rows, seen = [], set()
    names = releases(root) if os.path.isdir(root) else []
    for name in reversed(names):   # newest first: each release's size is what it adds to the newer ones
        info = release_info(os.path.join(root, name)) or {}
        export = safe_join(os.path.join(root, name), front)
        build = {}
        try:
            with open(os.path.join(export, "build-info.json")) as f:
                build = json.load(f)
        except (OSError, ValueError):
            pass
        rows.append({"id": name, "current": name == current, "commit": info.get("commit"),
                     "sealed_at": info.get("sealed_at"), "env": build.get("env"), "git_sha": build.get("git_sha"),
                     "dirty": build.get("dirty"), "built_at": build.get("built_at"), "api_url": build.get("api_url"),
                     "files": len(build.get("manifest", {})),
                     "bytes": unique_size(os.path.join(root, name), seen) if sizes else None})
        if checked:
            rows[-1]["damage"] = damage(os.path.join(root, name), front, "*" in hashed or name in hashed)
        if name == current:   # the client plans the next upload against it; compressed, it is a third the size
            rows[-1]["manifest_gz"] = base64.b64encode(zlib.compress(json.dumps(build.get("manifest", {})).encode(),
                                                                     6)).decode()
    rows.reverse()
    guide_path = os.path.join(app, *front.split("/"))
    print(json.dumps({"current": current, "releases": rows,
                      "out_is_dir": os.path.isdir(guide_path) and not os.path.islink(guide_path)}))


if __name__ == "__main__":
    command, app = sys.argv[1:3]
    if command == "clean":
        clean(app)
    elif command == "receive":
        receive(app, sys.argv[3], sys.argv[4])
    elif command == "seal":
        seal(app, sys.argv[3], sys.argv[4], sys.argv[5])
    elif command == "switch":
        switch(app, sys.argv[3], sys.argv[4])
    elif command == "prune":
        prune(app, int(sys.argv[3]), sys.argv[4:])
    elif command == "discard":
        discard(app, sys.argv[3])
    elif command == "list":
        listing(app, sys.argv[3], sys.argv[4] == "sizes", sys.argv[5:])
    else:
        fail("unknown command " + command)
