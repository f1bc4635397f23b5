"""The deploy lock, on the server: one command that changes the server at a time (standard library only).

`hold LOCK OWNER_JSON` takes the lock and keeps running on the command's own SSH channel. Its pid and start time
go into LOCK/owner.json: while this process lives, the lock is held. When the command ends it sends `release`;
when it is killed, the channel closes, this process exits and leaves the lock behind, and the next deploy can tell
it is stale (no such process) instead of waiting for a timeout. `step NAME` lines record where the deploy is, so a
stale lock says where its deploy stopped. Each line gets a one-line JSON answer.

One owner, always:
- The check and the take are one step under flock(2) on LOCK.flock (the kernel frees it when a process dies, so
  it can never be left behind): of several deploys that find one stale lock, exactly one takes it and the others
  see the winner. The new lock is made complete aside (owner.json in it) and renamed into place, so a lock never
  lacks its owner.
- Each take has a random token. `step` and `release` act only while the lock still holds it: after
  `unlock --force` and a new take, the old holder's writes are refused and it answers `lost` with the new owner.
- Liveness needs no write after the take: a step that cannot be recorded (a full disk) is answered with a warning
  and the lock stays held. A lock whose owner cannot be read or judged is held, never stale: unlock --force
  clears it.

`status LOCK` and `unlock LOCK [force]` read and remove it.
"""
import fcntl
import glob
import json
import os
import secrets
import shutil
import sys


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
            owner = json.load(f)
        return owner if isinstance(owner, dict) else None
    except (OSError, ValueError):
        return None


def alive(owner):
    """Held while its holder runs. An owner that cannot be read (None) or judged (no pid and start time) counts as
    held: calling it stale would hand a running deploy's lock to another."""
    if not owner or owner.get("start") is None:
        return True
    return started(owner.get("pid")) == owner.get("start")


def write_owner(lock, owner):
    tmp = os.path.join(lock, "owner.json.new")
    try:
        with open(tmp, "w") as f:
            json.dump(owner, f)
        os.replace(tmp, os.path.join(lock, "owner.json"))
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class serialised:
    """flock(2) on LOCK.flock for one check-and-change: takers, steps, releases and unlocks never interleave."""

    def __init__(self, lock):
        self.path = lock + ".flock"

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        os.close(self.fd)   # closing frees the flock


def remove(lock):
    """Move the lock aside with one rename, then delete it: a removal cut short never leaves a lock without owner."""
    aside = "%s.stale-%d" % (lock, os.getpid())
    os.rename(lock, aside)
    shutil.rmtree(aside, ignore_errors=True)


def take(lock, owner):
    """(taken, the stale owner that was replaced or {} when there was none, or the one that holds it); under the
    flock, so nobody else checks or takes meanwhile."""
    with serialised(lock):
        for leftover in glob.glob(glob.escape(lock) + ".new-*") + glob.glob(glob.escape(lock) + ".stale-*"):
            shutil.rmtree(leftover, ignore_errors=True)   # of a taker killed half-way (they only exist under the flock)
        replaced = None
        if os.path.isdir(lock):
            replaced = read_owner(lock)
            if alive(replaced):
                return False, replaced
            remove(lock)
        made = "%s.new-%d" % (lock, os.getpid())
        try:
            os.mkdir(made, 0o750)
            write_owner(made, owner)
            os.rename(made, lock)
        except OSError:
            shutil.rmtree(made, ignore_errors=True)
            raise
        return True, replaced


def answer(reply):
    print(json.dumps(reply), flush=True)


def hold(lock, owner_json):
    if not os.path.isdir(os.path.dirname(lock)):
        fail("%s does not exist: the server is not set up (run setup)" % os.path.dirname(lock))
    owner = json.loads(owner_json)
    token = secrets.token_hex(16)
    owner.update(pid=os.getpid(), start=started(os.getpid()), token=token)
    try:
        taken, other = take(lock, owner)
    except OSError as e:
        fail("cannot write the lock in %s: %s (free some space on the server)" % (os.path.dirname(lock), e))
    if not taken:
        answer({"held": other})
        return
    answer({"taken": True, "stale": other})
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command not in ("step", "release"):
            answer({"error": "unknown command " + command})
            continue
        with serialised(lock):
            current = read_owner(lock) if os.path.isdir(lock) else None
            if (current or {}).get("token") != token:
                # unlock --force removed ours (and another may hold it now): touch nothing, say whose it is
                answer({"lost": current})
                if command == "release":
                    return
                continue
            if command == "release":
                remove(lock)
                answer({"released": True})
                return
            owner["step"] = argument
            try:
                write_owner(lock, owner)
                answer({"ok": True})
            except OSError as e:   # the lock stays held (this process lives); only the step is not recorded
                answer({"ok": True, "warning": "could not record step %s in the lock: %s" % (argument, e)})
    # End of input without `release`: the deploy is gone. The lock stays, and reads as stale from now on.


def status(lock):
    locked = os.path.isdir(lock)
    owner = read_owner(lock) if locked else None
    print(json.dumps({"owner": owner, "locked": locked, "alive": locked and alive(owner)}))


def unlock(lock, force):
    with serialised(lock):
        if not os.path.isdir(lock):
            print(json.dumps({"removed": None}))
            return
        owner = read_owner(lock)
        if alive(owner) and not force:
            print(json.dumps({"held": owner}))
            return
        remove(lock)
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
