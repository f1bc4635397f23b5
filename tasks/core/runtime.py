"""Glue between a task's Invoke/Fabric context and the layers: settings, secrets, the Host.

Tasks call `settings_of(c)` and `host_of(c, s)`; nothing else looks inside the context.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import fabric
import paramiko
from fabric import Connection

from . import settings as settings_module
from .errors import UserError
from .host import Host, known_hosts_files, secure
from .secrets import install_masking, masker_for, read_dotenv
from .settings import Settings


def _layers(config) -> list[tuple[str, object]]:
    """Each config file Invoke/Fabric read, with its path, so that errors can name the file."""
    layers = []
    for level in ("system", "user", "project", "runtime"):
        path = getattr(config, f"_{level}_path", None)
        if path:
            layers.append((str(path), getattr(config, f"_{level}", None)))
    return layers


def runtime_path(config) -> Optional[str]:
    return getattr(config, "_runtime_path", None)


def settings_of(c) -> Settings:
    """The checked settings of the chosen environment, with its secrets loaded and masked from now on."""
    config = c.config
    path = runtime_path(config)
    if path and not getattr(config, "_runtime_found", False):
        raise UserError(f"settings file {path} not found: pick one of conf/*.yaml, e.g. -f conf/production.yaml")
    if path:
        settings_module.check_top_level(getattr(config, "_runtime", None), path,
                                        set(fabric.Config.global_defaults()))
    merged = config.get("qms")
    merged = dict(merged) if merged is not None else settings_module.defaults()
    s = settings_module.resolve(_layers(config), _plain(merged), path)
    if s.env:
        secrets_path = s.local_path(s.secrets_file.format(env=s.env))
        s.secrets = read_dotenv(secrets_path)
        s.secrets_path = secrets_path
        warn_if_readable_by_others(secrets_path)
    install_masking(masker_for(s.secrets))
    return s


def warn_if_readable_by_others(path) -> None:
    """Secrets files are 0600 (POSIX; Windows has no such mode bits): say so, once, without stopping."""
    if os.name == "posix" and path.is_file() and path.stat().st_mode & 0o077:
        print(f"warning: {path} can be read by other users: chmod 600 {path}", file=sys.stderr)


def _plain(value):
    """Invoke's DataProxy -> plain dicts and lists."""
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def connection_of(c, s: Settings) -> Connection:
    """The Connection fab -H gave, or one to the settings' host when the task got a plain context."""
    config = c.config if isinstance(c.config, fabric.Config) else fabric.Config(
        overrides={"run": dict(c.config.run)}, runtime_path=runtime_path(c.config), lazy=False)
    reloaded = _load_ssh_config_from_settings_file(config)
    if isinstance(c, Connection):
        if not reloaded:
            return c
        # Fabric resolved -H against the ssh config it had then; resolve again, keeping an explicit user/port.
        return Connection(c.original_host, config=config, user=c.user if c.user != config.user else None,
                          port=c.port if c.port != 22 else None)
    target = s.require("host", "a task that talks to the server (or pass -H)")
    return Connection(target, config=config)


def _load_ssh_config_from_settings_file(config) -> bool:
    """Honour `ssh_config_path` from the -f settings file.

    Fabric 3.2 loads ssh config before it merges the -f file, so that key is ignored there (an explicit -S still
    wins, as in Fabric). Returns whether the ssh config was loaded again.
    """
    wanted = config.get("ssh_config_path")
    if not wanted or config._runtime_ssh_path is not None:
        return False
    if not Path(wanted).expanduser().is_file():
        raise UserError(f"ssh config {wanted} (ssh_config_path in {runtime_path(config)}) does not exist: "
                        "for the stand-in, run scripts/standin up first")
    config.set_runtime_ssh_path(wanted)
    config.base_ssh_config = paramiko.SSHConfig()
    config._load_ssh_files()
    return True


def known_hosts_of(conn: Connection, s: Settings):
    return known_hosts_files(conn, s.ssh.known_hosts and str(s.local_path(s.ssh.known_hosts)))


_hosts: dict = {}   # id(context) -> (context, Host): the steps of a chain share one SSH connection


def host_of(c, s: Settings) -> Host:
    """A connected Host whose key was checked against known_hosts; one per context, so that the tasks a chain
    calls one after another reuse its connection."""
    known = _hosts.get(id(c))
    if known and known[0] is c and known[1].conn.is_connected:
        return known[1]
    conn = connection_of(c, s)
    secure(conn, known_hosts_of(conn, s), accept_new=s.ssh.new_host_keys == "accept")
    host = Host(conn, dry=bool(conn.config.run.dry), owner=s.user, echo=bool(conn.config.run.echo),
                timeout=s.ssh.command_timeout, long_timeout=s.ssh.long_timeout).open()
    _hosts[id(c)] = (c, host)
    return host
