"""The one remote boundary: every effect on a server goes through a Host.

- `run`/`sudo` quote properly: a sudo command runs whole under `bash -c`, so `a && b > f` is all root.
- Probes (`probe`, `stat`, `read`) only read; they run under `--dry` too, so a dry run can show real diffs.
- Writes (`run`, `sudo`, `ensure_dir`, `put`, `append_line`) say whether they changed anything and, under
  `--dry`, only print what they would do: nothing is transferred or changed.
- Everything printed passes through the secrets mask (secrets.install_masking).
- Host keys are checked against known_hosts; an unknown host is refused unless the settings say otherwise.
"""
from __future__ import annotations

import base64
import contextlib
import io
import queue
import shlex
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import paramiko
from fabric import Connection
from fabric.runners import Remote
from invoke.exceptions import AuthFailure, CommandTimedOut

from . import facts
from .errors import UserError
from .facts import PathState


class RemoteFailure(UserError):
    """A command on the server exited non-zero."""


# Every command runs in a process group of its own (setsid), and a guard beside it ends that group when the
# command's input ends: the SSH channel closed (the tool was killed, the link dropped) or the tool closed it on
# Ctrl-C. sshd signals nothing to a command without a terminal, so uv, git archive | tar or a migration under
# systemd-run would otherwise go on after the deploy died, writing into a release the next deploy removes. SIGTERM
# once (a command may clean up on it: manage_command stops its unit), SIGKILL after 5 s; the guard waits until the
# group is gone.
GUARD = """exec 3<&0 </dev/null
setsid bash -c "$1" &
c=$!
{ read -r -n 1 _ <&3; trap '' TERM; kill -TERM -- -$c; kill -TERM $c; n=0
  while kill -0 $c || kill -0 -- -$c; do
    n=$((n+1)); [ $n -eq 50 ] && { kill -KILL -- -$c; kill -KILL $c; }; sleep 0.1
  done; } >/dev/null 2>&1 &
w=$!
wait $c
r=$?
kill $w 2>/dev/null
exit $r"""


def guarded(command: str) -> str:
    """`command` as it runs on the server: ended with the channel that started it."""
    return f"bash -c {shlex.quote(GUARD)} qms-guard {shlex.quote(command)}"


class GuardedRemote(Remote):
    """Fabric's runner, except that Ctrl-C ends the remote command before the tool goes on: its input is closed,
    the guard ends it, and the KeyboardInterrupt is raised once it has. Without this the chain's clean-up would run
    beside it. A second Ctrl-C, or a channel that cannot be closed, raises at once."""

    def send_interrupt(self, interrupt):
        if self.using_pty or getattr(self, "interrupted", None):
            raise interrupt
        self.interrupted = interrupt
        try:
            self.channel.shutdown_write()
        except (OSError, EOFError, paramiko.SSHException):
            raise interrupt from None

    def run(self, command, **kwargs):
        self.interrupted = None
        result = super().run(command, **kwargs)
        if self.interrupted:
            raise self.interrupted
        return result


class Host:
    def __init__(self, conn: Connection, *, dry: bool, owner: str, echo: bool = False, timeout: int = 300,
                 long_timeout: int = 3600):
        self.conn = conn
        self.dry = dry
        # seconds a command may run (qms.ssh.command_timeout); the long ones pass long_timeout (qms.ssh.long_timeout)
        self.timeout, self.long_timeout = timeout, long_timeout
        self.owner = owner            # default owner of what we write
        self.echo = echo
        self.name = conn.original_host or conn.host
        self.gone: Optional[RemoteFailure] = None   # set once the connection broke: nothing more is sent
        conn.config.runners.remote = GuardedRemote

    # -- output --------------------------------------------------------------------------------------------
    def say(self, message: str) -> None:
        print(f"[{self.name}] {message}", flush=True)

    def report(self, what: str, changed: bool, detail: str = "") -> bool:
        verb = ("would change" if self.dry else "changed") if changed else "ok"
        self.say(f"{verb:12} {what}{'  (' + detail + ')' if detail else ''}")
        return changed

    # -- commands ------------------------------------------------------------------------------------------
    def run(self, command: str, *, sudo: bool = False, write: bool = True, warn: bool = False,
            hide: bool = True, timeout: Optional[int] = None):
        """Run `command` (as root with sudo=True). write=False marks a read-only probe that runs under --dry.
        `timeout`: seconds before it is stopped (default self.timeout); past it the task fails in one line."""
        if write and (self.echo or self.dry):
            self.say(f"{'would run' if self.dry else '$'} {'sudo ' if sudo else ''}{command}")
        if write and self.dry:
            return None
        if self.gone:   # Fabric would open a new connection, and wait out its timeout, over the same dead link
            raise self.gone
        # servers speak UTF-8; Invoke would decode with this machine's code page (cp949 on a Korean Windows)
        limit = timeout or self.timeout
        options = dict(hide=hide, warn=True, pty=False, in_stream=False, dry=False, timeout=limit, encoding="utf-8")
        password = self.conn.config.sudo.password
        remote = guarded(command)
        started = time.monotonic()
        try:
            if sudo and password:
                result = self.conn.sudo(f"bash -c {shlex.quote(remote)}", password=password, **options)
            elif sudo:
                # -n: fail at once instead of waiting for a password prompt nobody will answer
                result = self.conn.run(f"sudo -n bash -c {shlex.quote(remote)}", **options)
            else:
                result = self.conn.run(remote, **options)
        except CommandTimedOut:
            raise self.too_long(command, limit) from None
        except AuthFailure:
            raise UserError(f"[{self.name}] sudo refused the password: check it, or give {self.conn.user} "
                            "passwordless sudo") from None
        except (OSError, EOFError, paramiko.SSHException) as lost:
            raise self.lost(command, lost) from None
        if result.exited == -1 and not self.conn.is_connected:   # the channel closed with the transport: no status
            raise self.lost(command, None)
        if result.exited == -1 and time.monotonic() - started >= limit:
            # Invoke's timer closed the channel; it raises CommandTimedOut only if its thread ended in time to say so
            raise self.too_long(command, limit)
        if result.failed and sudo and not password and "a password is required" in result.stderr:
            raise UserError(f"[{self.name}] sudo needs a password for {self.conn.user}: run fab with "
                            "--prompt-for-sudo-password, or allow passwordless sudo for this user")
        if result.failed and not warn:
            detail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:] or ["no output"]
            raise RemoteFailure(f"[{self.name}] `{command}` failed with exit code {result.exited}: {detail[0]}")
        return result

    def too_long(self, command: str, limit: float) -> UserError:
        shown = command if len(command) <= 60 else command[:57] + "..."
        setting = "qms.ssh.long_timeout" if limit == self.long_timeout else "qms.ssh.command_timeout"
        return UserError(f"[{self.name}] `{shown}` did not finish within {limit:g} s and was stopped: check the "
                         f"server (fab doctor); if it needs longer, raise {setting}")

    def lost(self, command: str, why) -> "RemoteFailure":
        """The error for a connection that broke during `command`; every later command fails with it at once."""
        shown = command if len(command) <= 60 else command[:57] + "..."
        self.gone = RemoteFailure(f"[{self.name}] the connection to {self.conn.host} was lost ({why or 'closed'}) "
                                  f"during `{shown}`: check the network, then run the task again (a deploy cut off "
                                  "before its switch left the site as it was)")
        return self.gone

    def sudo(self, command: str, **kwargs):
        return self.run(command, sudo=True, **kwargs)

    def probe(self, command: str, *, sudo: bool = False, warn: bool = True):
        """A read-only command: runs even under --dry, never echoed."""
        return self.run(command, sudo=sudo, write=False, warn=warn)

    # -- facts ---------------------------------------------------------------------------------------------
    def stat(self, path: str, with_hash: bool = False) -> Optional[PathState]:
        result = self.probe(facts.path_state_command(path, with_hash), sudo=True, warn=False)
        return facts.parse_path_state(result.stdout)

    def exists(self, path: str) -> bool:
        return self.stat(path) is not None

    def read(self, path: str) -> Optional[bytes]:
        """The content of a file (read as root), or None when it does not exist."""
        result = self.probe(f"base64 -w0 -- {shlex.quote(path)}", sudo=True)
        if result.failed:
            return None
        return base64.b64decode(result.stdout)

    def stream(self, command: str, produce, *, label: str, total: int) -> Optional[str]:
        """Run `command` with its stdin fed by `produce(write, advance)`, in one SSH channel: one round trip for a
        whole tree. `advance(n)` moves the progress bar (shown for large transfers on a terminal) by n of `total`.
        Returns stdout; under --dry nothing is sent."""
        if self.dry:
            self.say(f"would send {label}")
            return None
        if self.echo:
            self.say(f"$ {command[:200]}{' ...' if len(command) > 200 else ''}")
        channel = self.conn.client.get_transport().open_session()
        channel.exec_command(command)
        try:
            with transfer_progress(total, label) as advance:
                send_pipelined(produce, channel.sendall, advance)
                channel.shutdown_write()
            stdout, stderr = _drain(channel)
        except KeyboardInterrupt:   # the receiver sees its stream end early and removes what it wrote: let it
            with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                channel.shutdown_write()
                channel.status_event.wait(10)
            channel.close()
            raise
        except (OSError, EOFError, paramiko.SSHException) as lost:   # the server rebooted, sshd died, the net
            self.gone = RemoteFailure(f"[{self.name}] the connection broke while sending {label} ({lost or 'closed'}):"
                                      " run it again (the server keeps what it served; a half-sent upload is cleaned "
                                      "up by the next one)")
            raise self.gone from None
        code = channel.recv_exit_status()
        channel.close()
        if code != 0 and not stdout.strip():
            detail = stderr.strip().splitlines()[-1:] or [f"exit code {code}"]
            raise RemoteFailure(f"[{self.name}] sending {label} failed: {detail[0]}")
        return stdout

    def hold(self, command: str) -> "Held":
        """Start `command` on a channel of its own and leave it running beside the other commands: its first output
        line is the answer. It lives exactly as long as this SSH connection (or until closed), which is what lets
        a lock tell a running deploy from a killed one."""
        channel = self.conn.client.get_transport().open_session()
        channel.exec_command(command)
        return Held(channel, _line(channel))

    # -- idempotent operations -----------------------------------------------------------------------------
    def ensure_dir(self, path: str, mode: int = 0o755, owner: Optional[str] = None,
                   group: Optional[str] = None) -> bool:
        owner = owner or self.owner
        group = group or owner
        state = self.stat(path)
        try:
            commands = facts.dir_commands(state, path, mode, owner, group)
        except ValueError as e:
            raise UserError(f"[{self.name}] {e}: move it away first") from None
        if commands:
            self.sudo(" && ".join(commands))
        return self.report(f"{path}/", bool(commands), facts.describe(mode, owner, group))

    def put(self, path: str, content: bytes | str, mode: int = 0o644, owner: Optional[str] = None,
            group: Optional[str] = None, show_diff: Optional[bool] = None, quiet: bool = False) -> bool:
        """Make `path` hold exactly `content`, replaced atomically, only when content or attributes differ.
        The diff is printed when show_diff is True, or by default under --dry and -e."""
        data = content.encode() if isinstance(content, str) else content
        owner = owner or self.owner
        group = group or owner
        report = (lambda what, changed, detail="": changed) if quiet else self.report
        state = self.stat(path, with_hash=True)
        if state is not None and not state.is_file:
            raise UserError(f"[{self.name}] {path} is a {state.kind}, not a file: move it away first")
        if state is not None and state.sha256 == facts.sha256(data):
            commands = facts.attribute_commands(state, path, mode, owner, group)
            if commands:
                self.sudo(" && ".join(commands))
            return report(path, bool(commands), facts.describe(mode, owner, group))
        if show_diff or (show_diff is None and (self.dry or self.echo)):
            old = self.read(path) if state is not None else None
            sys.stdout.write(facts.text_diff(old, data, path))
        if self.dry:
            return report(path, True, f"{len(data)} bytes, {facts.describe(mode, owner, group)}")
        # Upload into a private temp file, then install it beside the target and rename: readers never see
        # a half-written file, and the content is never readable by others on the way.
        staged = self.run("umask 077 && mktemp /tmp/qms-put.XXXXXXXX").stdout.strip()
        qs, q, tmp = shlex.quote(staged), shlex.quote(path), shlex.quote(path + ".qms-new")
        try:
            self.conn.put(io.BytesIO(data), remote=staged, preserve_mode=False)
        except Exception:
            self.run(f"rm -f -- {qs}", warn=True)
            raise
        self.sudo(f"trap 'rm -f -- {staged}' EXIT; install -m {mode:04o} -o {shlex.quote(owner)} "
                  f"-g {shlex.quote(group)} -- {qs} {tmp} && mv -f -- {tmp} {q}")
        return report(path, True, f"{len(data)} bytes, {facts.describe(mode, owner, group)}")

    def append_line(self, path: str, line: str) -> bool:
        """Add `line` to a file (created when missing) unless a line exactly like it is there already."""
        q, ql = shlex.quote(path), shlex.quote(line)
        present = self.probe(f"grep -qxF -- {ql} {q}", sudo=True).ok
        if not present:
            self.sudo(f"printf '%s\\n' {ql} >> {q}")
        return self.report(f"{path}: {line}", not present)

    # -- connection ----------------------------------------------------------------------------------------
    def open(self) -> "Host":
        try:
            self.conn.open()
        except paramiko.BadHostKeyException as e:
            raise UserError(
                f"the host key of {self.name} CHANGED (now {fingerprint(e.key)}): this can be an attack; if the "
                "server was rebuilt, remove its old line from known_hosts and run trust-host") from None
        except paramiko.SSHException as e:
            if "not found in known_hosts" in str(e):
                raise UserError(
                    f"{self.name} is not in known_hosts: check its key and run `fab -H {self.name} trust-host`, "
                    "or set qms.ssh.new_host_keys: accept") from None
            raise UserError(f"ssh to {self.name} failed: {e}") from None
        except paramiko.AuthenticationException:
            raise UserError(f"ssh login as {self.conn.user} on {self.name} was refused: check the key "
                            "(ssh config IdentityFile, or -i)") from None
        except (socket.timeout, TimeoutError, OSError) as e:
            reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
            raise UserError(f"cannot reach {self.name} ({self.conn.host}:{self.conn.port}): {reason}") from None
        bounded_waits(self.conn.client.get_transport().sock)
        return self


# A link that stops carrying packets (a dropped route, a server that went away without a word) ends the connection
# within about this many seconds, idle or sending, instead of after the system's two hours or fifteen minutes.
DEAD_LINK_SECONDS = 20


def bounded_waits(sock) -> None:
    """TCP keepalive every 5 s (3 misses) while idle, and no unacknowledged data older than DEAD_LINK_SECONDS while
    sending. Where the system lacks an option (Windows, macOS), what it has is used. Through an ssh config's
    ProxyCommand there is no socket here (a pipe to the proxy): the proxy's own connection decides."""
    if not isinstance(sock, socket.socket):
        return
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, value in (("TCP_KEEPIDLE", 5), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3),
                        ("TCP_USER_TIMEOUT", DEAD_LINK_SECONDS * 1000)):
        if hasattr(socket, name):
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    for level, option, value in options:
        with contextlib.suppress(OSError):
            sock.setsockopt(level, option, value)


def _line(channel) -> str:
    """What a held command prints up to the end of its next line (it answers each line it is sent with one)."""
    received = b""
    while not received.endswith(b"\n"):
        data = channel.recv(4096)
        if not data:
            break
        received += data
    return received.decode(errors="replace")


class Held:
    """A command left running by Host.hold: send it lines, then close it."""
    def __init__(self, channel, first_output: str):
        self.channel = channel
        self.first_output = first_output

    def send(self, line: str) -> None:
        if not self.channel.closed:
            self.channel.sendall((line + "\n").encode())

    def ask(self, line: str) -> str:
        """Send `line` and return the one line the command answers ('' when it is gone)."""
        self.send(line)
        return _line(self.channel)

    def close(self, last_line: str = "") -> str:
        """Send `last_line` (if any), end the input, and return what it printed after its first line."""
        if self.channel.closed:
            return ""
        try:
            if last_line:
                self.send(last_line)
            self.channel.shutdown_write()
            stdout, _ = _drain(self.channel)
        except (OSError, EOFError, paramiko.SSHException):   # the connection is gone, and the command with it
            return ""
        self.channel.close()
        return stdout


def send_pipelined(produce, send, advance) -> None:
    """Run `produce(write, advance)` in a thread while this one sends: compressing the next chunk overlaps with
    encrypting and sending this one (zlib and the ciphers release the GIL). A send error stops both."""
    chunks: queue.Queue = queue.Queue(maxsize=32)
    failed = threading.Event()
    errors: list[BaseException] = []

    def put(data: bytes) -> None:
        if failed.is_set():
            raise OSError("the server stopped reading")
        chunks.put(data)

    def producer() -> None:
        try:
            produce(put, advance)
        except BaseException as e:   # re-raised below, in the caller's thread
            errors.append(e)
        finally:
            chunks.put(None)

    thread = threading.Thread(target=producer, daemon=True)
    thread.start()
    while (data := chunks.get()) is not None:
        if failed.is_set():
            continue   # drain, so the producer can finish
        try:
            send(data)
        except OSError:
            failed.set()   # the server stopped reading: its answer (read next) says why
    thread.join()
    if errors and not failed.is_set():
        raise errors[0]


def _drain(channel) -> tuple[str, str]:
    """All of stdout and stderr, until the command has exited and closed its output."""
    out, err = [], []
    while True:
        if channel.recv_ready():
            out.append(channel.recv(65536))
        elif channel.recv_stderr_ready():
            err.append(channel.recv_stderr(65536))
        elif channel.exit_status_ready() and channel.eof_received:
            break
        elif channel.closed:   # the transport went away: no exit status will ever come (waiting would spin)
            raise EOFError("the SSH connection closed before the command finished")
        else:
            channel.status_event.wait(0.02)
    return b"".join(out).decode(errors="replace"), b"".join(err).decode(errors="replace")


@contextlib.contextmanager
def transfer_progress(total: int, label: str):
    """Yields advance(nbytes). A rich progress bar on a terminal for transfers over 4 MB; silent otherwise."""
    if total < 4 << 20 or not sys.stdout.isatty():
        yield lambda n: None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), transient=True) as progress:
        bar = progress.add_task(label, total=total)
        yield lambda n: progress.advance(bar, n)


def fingerprint(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.fingerprint}"


def known_hosts_files(conn: Connection, configured: Optional[str]) -> list[Path]:
    """Where host keys are looked up: the setting, else ssh config's UserKnownHostsFile, else ~/.ssh."""
    if configured:
        return [Path(configured).expanduser()]
    from_ssh_config = conn.ssh_config.get("userknownhostsfile")
    if from_ssh_config:
        names = from_ssh_config if isinstance(from_ssh_config, list) else from_ssh_config.split()
        return [Path(name).expanduser() for name in names]
    return [Path("~/.ssh/known_hosts").expanduser()]


def host_key_name(conn: Connection) -> str:
    return conn.host if conn.port == 22 else f"[{conn.host}]:{conn.port}"


def secure(conn: Connection, files: list[Path], accept_new: bool) -> None:
    """Replace Fabric's silent AutoAddPolicy: check against known_hosts, accept-and-record only when told to."""
    client = conn.client
    for path in files:
        if path.is_file():
            client.load_host_keys(str(path))
    if accept_new:
        client.set_missing_host_key_policy(RecordNewKey(files[0]))
    else:
        client.set_missing_host_key_policy(paramiko.RejectPolicy())


def record_host_key(path: Path, name: str, key: paramiko.PKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8", newline="\n") as f:   # ssh reads \n-ended lines, Windows' too
        f.write(f"{name} {key.get_name()} {key.get_base64()}\n")
    print(f"[{name}] host key {fingerprint(key)} recorded in {path}", flush=True)


def scan_host_key(conn: Connection) -> paramiko.PKey:
    """The key the server offers (like ssh-keyscan), without logging in or trusting it."""
    try:
        sock = socket.create_connection((conn.host, conn.port), timeout=conn.connect_timeout or 15)
    except OSError as e:
        raise UserError(f"cannot reach {conn.host}:{conn.port}: {e.strerror or e}") from None
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=conn.connect_timeout or 15)
        return transport.get_remote_server_key()
    except paramiko.SSHException as e:
        raise UserError(f"{conn.host}:{conn.port} does not speak ssh: {e}") from None
    finally:
        transport.close()


class RecordNewKey(paramiko.MissingHostKeyPolicy):
    """Accept a host we have never seen, and say so: its fingerprint is printed and recorded in known_hosts."""

    def __init__(self, path: Path):
        self.path = path

    def missing_host_key(self, client, hostname, key):
        record_host_key(self.path, hostname, key)
        client.get_host_keys().add(hostname, key.get_name(), key)
