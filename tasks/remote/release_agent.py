"""Runs ON THE SERVER (python3 -c, standard library only): frontend releases.

  receive  read one tar stream from stdin: a plan (what differs from the current release), then only the changed
           files; link the unchanged ones from the current release; verify everything against the rebuilt manifest;
           files 644 and directories 755 from creation; switch `out` atomically; prune
  list     the releases, as JSON

Layout: RELEASES/<id>/ complete releases, RELEASES/.incoming-<id>/ one being received (a leftover of a killed
upload is removed by the next one), OUT -> releases/<id> (relative symlink; replaced with rename(2), so nginx
sees the old release or the new one, never a mix).
"""
import base64
import hashlib
import json
import os
import shutil
import sys
import tarfile
import time
import zlib

INCOMING = ".incoming-"


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


def current_id(out):
    target = os.readlink(out) if os.path.islink(out) else None
    return os.path.basename(target.rstrip("/")) if target else None


def safe_join(root, rel):
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        fail("unsafe path in upload: %r" % rel)
    return os.path.join(root, *parts)


def releases(root):
    """Oldest first, by when each was completed (ids made within one second do not sort by name)."""
    names = [n for n in os.listdir(root) if not n.startswith(".") and os.path.isdir(os.path.join(root, n))]
    return sorted(names, key=lambda n: (os.stat(os.path.join(root, n)).st_mtime_ns, n))


def canonical(manifest):
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def read_manifest(release_dir):
    try:
        with open(os.path.join(release_dir, "build-info.json")) as f:
            return json.load(f).get("manifest", {})
    except (OSError, ValueError):
        return {}


def receive(root, out):
    os.umask(0o022)   # files 644 and directories 755 as they are created: no chmod pass afterwards
    os.makedirs(root, exist_ok=True)
    for name in os.listdir(root):   # leftovers of an upload that was killed
        if name.startswith(INCOMING):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    stream = tarfile.open(fileobj=sys.stdin.buffer, mode="r|gz")
    first = stream.next()   # stream.next(), not iteration: a stream cannot seek back to re-read members
    if first is None or first.name != ".qms-plan.json":
        fail("the upload stream does not start with a plan")
    plan = json.loads(stream.extractfile(first).read())
    base, changed = plan.get("base"), plan["changed"]
    # The client sends only what differs from the base release; the whole manifest is rebuilt here and must hash
    # to what the client built, or the base changed under us.
    manifest = read_manifest(os.path.join(root, base)) if base else {}
    for rel in plan["removed"]:
        manifest.pop(rel, None)
    manifest.update(changed)
    if canonical(manifest) != plan["manifest_sha"]:
        fail("the server's current release is not the one this upload was planned against: upload again")
    rid, n = plan["id"], 1
    while os.path.exists(os.path.join(root, rid)):   # two uploads within one second
        n += 1
        rid = "%s-%d" % (plan["id"], n)
    incoming = os.path.join(root, INCOMING + rid)
    os.mkdir(incoming)
    made = {incoming}
    try:
        linked = 0
        for rel in manifest:
            if rel not in changed:
                dest = safe_join(incoming, rel)
                make_parents(dest, made)
                os.link(os.path.join(root, base, *rel.split("/")), dest)   # same content: share it, send nothing
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
            fail("release %s does not match its manifest: %s" % (rid, "; ".join(problems[:5])))
        with open(os.path.join(incoming, "build-info.json"), "w") as f:
            f.write(json.dumps(dict(plan["info"], manifest=manifest), indent=1, sort_keys=True) + "\n")
        os.utime(incoming)   # completion time orders the releases
        os.rename(incoming, os.path.join(root, rid))
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    previous = current_id(out)
    switch(root, out, rid)
    pruned = prune(root, rid, previous, plan["keep"])
    print(json.dumps({"id": rid, "previous": previous, "linked": linked, "received": received, "pruned": pruned}))


def make_parents(path, made):
    parent = os.path.dirname(path)
    if parent not in made:
        os.makedirs(parent, exist_ok=True)
        made.add(parent)


def verify(release, manifest, skip=()):
    """Every file present with its size and hash (`skip`: hashed already while they were written)."""
    problems = []
    for dirpath, _, names in os.walk(release):
        for name in names:
            rel = os.path.relpath(os.path.join(dirpath, name), release).replace(os.sep, "/")
            if rel not in manifest and rel != "build-info.json":   # the manifest's own file
                problems.append("unexpected file " + rel)
    for rel, (sha, size) in manifest.items():
        path = os.path.join(release, *rel.split("/"))
        if not os.path.isfile(path):
            problems.append("missing " + rel)
        elif os.path.getsize(path) != size or (rel not in skip and digest(path) != sha):
            problems.append("content differs: " + rel)
    return problems


def switch(root, out, rid):
    """Point `out` at releases/<rid> with one rename; an `out` that is a plain directory (a server set up by
    hand, as in the guide) is first adopted as a release so that it stays available for rollback."""
    if os.path.isdir(out) and not os.path.islink(out):
        adopted = "00000000-000000-adopted-" + time.strftime("%Y%m%d%H%M%S", time.gmtime())
        os.rename(out, os.path.join(root, adopted))
    link = out + ".qms-new"
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(os.path.relpath(os.path.join(root, rid), os.path.dirname(out)), link)
    os.replace(link, out)


def switch_back(root, out, rid):
    """Serve an earlier release again (rollback), after checking it is still whole."""
    release = os.path.join(root, rid)
    if "/" in rid or rid.startswith(".") or not os.path.isdir(release):
        fail("there is no release %s on the server any more (older ones are pruned)" % rid)
    problems = verify(release, read_manifest(release))
    if problems:
        fail("release %s is damaged (%s): it cannot be served again" % (rid, problems[0]))
    previous = current_id(out)
    if previous != rid:
        switch(root, out, rid)
    print(json.dumps({"id": rid, "previous": previous}))


def prune(root, current, previous, keep):
    """Remove the oldest releases beyond `keep`; never the current one or the one it replaced."""
    names = releases(root)
    doomed = [n for n in names[:-keep] if n not in (current, previous)] if len(names) > keep else []
    for name in doomed:
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    return doomed


def listing(root, out):
    current = current_id(out)
    rows = []
    for name in releases(root) if os.path.isdir(root) else []:
        info = {}
        try:
            with open(os.path.join(root, name, "build-info.json")) as f:
                info = json.load(f)
        except (OSError, ValueError):
            pass
        rows.append({"id": name, "current": name == current, "env": info.get("env"), "git_sha": info.get("git_sha"),
                     "dirty": info.get("dirty"), "built_at": info.get("built_at"), "api_url": info.get("api_url"),
                     "files": len(info.get("manifest", {}))})
        if name == current:   # the client plans the next upload against it; compressed, it is a third the size
            rows[-1]["manifest_gz"] = base64.b64encode(zlib.compress(json.dumps(info.get("manifest", {})).encode(),
                                                                     6)).decode()
    print(json.dumps({"current": current, "out_is_dir": os.path.isdir(out) and not os.path.islink(out),
                      "releases": rows}))


if __name__ == "__main__":
    command, root, out = sys.argv[1:4]
    if command == "receive":
        receive(root, out)
    elif command == "list":
        listing(root, out)
    elif command == "switch":
        switch_back(root, out, sys.argv[4])
    else:
        fail("unknown command " + command)
