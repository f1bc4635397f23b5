"""SSH trust: host keys are checked, never silently accepted (Fabric's own default accepts any key)."""
import paramiko
from invoke import Collection, task

from .core.errors import UserError
from .core.host import fingerprint as describe_key
from .core.host import host_key_name, record_host_key, scan_host_key
from .core.runtime import connection_of, known_hosts_of, settings_of
from .lock import read_only


@task(help={"fingerprint": "the fingerprint you expect (SHA256:..., e.g. from your provider's console); "
                           "the host is refused when it offers another key"})
@read_only
def trust_host(c, fingerprint=None):
    """Show a server's ssh host key and record it in known_hosts.

    Show a server's ssh host key and record it in known_hosts (once per new server).
    """
    s = settings_of(c)
    conn = connection_of(c, s)
    files = known_hosts_of(conn, s)
    key = scan_host_key(conn)
    name = host_key_name(conn)
    offered = describe_key(key)
    if fingerprint and fingerprint.split()[-1] != key.fingerprint:
        raise UserError(f"{name} offers {offered}, not {fingerprint}: not trusted; check the address and the server")
    known = paramiko.HostKeys()
    for path in files:
        if path.is_file():
            known.load(str(path))
    recorded = (known.lookup(name) or {}).get(key.get_name())
    if recorded is not None and recorded != key:
        raise UserError(f"{name} offers {offered}, but known_hosts holds another key for it: if the server was "
                        f"rebuilt, remove the old one (ssh-keygen -R '{name}') and run trust-host again")
    if recorded is not None:
        print(f"[{name}] host key {offered} is already trusted")
        return
    if not fingerprint:
        print(f"[{name}] offers {offered}: compare it with the server's own "
              "(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on its console)")
    record_host_key(files[0], name, key)


ns = Collection(trust_host)
