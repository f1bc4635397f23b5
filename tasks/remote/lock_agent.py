"""The deploy lock, on the server: one deploy at a time (standard library only).

`hold LOCK OWNER_JSON` takes the lock (an atomic mkdir) and keeps running on the deploy's own SSH channel. Its
pid and start time go into LOCK/owner.json: while this process lives, the lock is held. When the deploy ends it
sends `release`; when the deploy is killed, the channel closes, this process exits and leaves the lock behind,
and the next deploy can tell it is stale (no such process) instead of waiting for a timeout. `step NAME` lines
record where the deploy is, so a stale lock says where its deploy stopped.

`status LOCK` and `unlock LOCK [force]` read and remove it.
"""
import json
import os
import shutil
import sys
import time


def fail(message):
    print(json.dumps({"error": message}))
    sys.exit(1)


def started(pid):
    """The kernel's start time of `pid` (field 22 of /proc/PID/stat): a reused pid has another one."""
    try:
        with open("/proc/%s/stat" % int(pid)) as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, ValueError, TypeError, IndexError):
        return None


def read_owner(lock):
    try:
        with open(os.path.join(lock, "owner.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def alive(owner):
    return bool(owner) and owner.get("start") is not None and started(owner.get("pid")) == owner.get("start")


def write_owner(lock, owner):
    tmp = os.path.join(lock, "owner.json.new")
    with open(tmp, "w") as f:
        json.dump(owner, f)
    os.replace(tmp, os.path.join(lock, "owner.json"))


def take(lock, owner):
    """(taken, the stale owner that was replaced, or the live one that holds it)."""
    for _ in range(3):
        try:
            os.mkdir(lock, 0o750)
            write_owner(lock, owner)
            return True, None
        except FileExistsError:
            pass
        current = read_owner(lock)
        if current is None and time.time() - os.stat(lock).st_mtime < 10:
            time.sleep(0.5)   # another deploy is between its mkdir and its owner.json
            continue
        if alive(current):
            return False, current
        # Stale: move it aside with one rename, so that of two deploys seeing it only one takes over.
        aside = "%s.stale-%d" % (lock, os.getpid())
        try:
            os.rename(lock, aside)
        except OSError:
            continue
        shutil.rmtree(aside, ignore_errors=True)
        try:
            os.mkdir(lock, 0o750)
        except FileExistsError:
            continue
        write_owner(lock, owner)
        return True, current or {}
    return False, read_owner(lock) or {}


def hold(lock, owner_json):
    if not os.path.isdir(os.path.dirname(lock)):
        fail("%s does not exist: the server is not set up (run setup)" % os.path.dirname(lock))
    owner = json.loads(owner_json)
    owner.update(pid=os.getpid(), start=started(os.getpid()))
    taken, other = take(lock, owner)
    if not taken:
        print(json.dumps({"held": other}), flush=True)
        return
    print(json.dumps({"taken": True, "stale": other}), flush=True)
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "step":
            owner["step"] = argument
            write_owner(lock, owner)
        elif command == "release":
            shutil.rmtree(lock, ignore_errors=True)
            print(json.dumps({"released": True}), flush=True)
            return
    # End of input without `release`: the deploy is gone. The lock stays, and reads as stale from now on.


def status(lock):
    owner = read_owner(lock) if os.path.isdir(lock) else None
    print(json.dumps({"owner": owner, "locked": os.path.isdir(lock), "alive": alive(owner)}))


def unlock(lock, force):
    owner = read_owner(lock)
    if not os.path.isdir(lock):
        print(json.dumps({"removed": None}))
        return
    if alive(owner) and not force:
        print(json.dumps({"held": owner}))
        return
    shutil.rmtree(lock, ignore_errors=True)
    print(json.dumps({"removed": owner or {}}))


if __name__ == "__main__":
    command, lock = sys.argv[1:3]
    if command == "hold":
        hold(lock, sys.argv[3])
    elif command == "status":
        status(lock)
    elif command == "unlock":
        unlock(lock, len(sys.argv) > 3 and sys.argv[3] == "force")
    else:
        fail("unknown command " + command)
