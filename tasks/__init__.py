"""The task tree: one module per concern, assembled into one flat namespace for `fab` and `inv`."""
from invoke import Collection

from . import app_check, backend, backups, browser_check, build, deploy, doctor, environment, envfile, git, history, \
    lock, nginx, perms, release, secrets_check, server, service, setup, smoke, ssh, tls
from .core.errors import install_excepthook, quiet_library_logs
from .core.local_files import tolerant_output, utf8_settings_files
from .core.local_process import terminate_as_interrupt
from .core.settings import defaults

install_excepthook()
terminate_as_interrupt()
quiet_library_logs()
utf8_settings_files()   # before Invoke reads the -f file (after this import)
tolerant_output()

MODULES = (environment, ssh, server, build, release, perms, nginx, smoke, tls, envfile, git, backend, service, backups,
           secrets_check, setup, deploy, history, lock, doctor, browser_check, app_check)

ns = Collection()
for module in MODULES:
    for name, body in module.ns.tasks.items():
        ns.add_task(body, name=name)
# Fabric logs in as `user` unless -H user@host or ssh config says otherwise: the guide's `ubuntu`, not the
# local account (which is what Fabric would pick, and is wrong on every developer machine).
# A server that drops packets (a firewall) would keep a connect waiting for the system's TCP timeout, over two
# minutes: give up after 15 s (fab --connect-timeout, or ConnectTimeout in ssh config, changes it).
ns.configure({"qms": defaults(), "user": defaults()["user"], "timeouts": {"connect": 15}})
