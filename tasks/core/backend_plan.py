"""The backend, planned: server paths, the systemd units, the server's .env, and checks on them. Pure."""
from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass
from typing import Optional

from .errors import UserError
from .secrets import TOOL_KEYS
from .settings import Settings
from .templates import render_template


CURRENT = "current"   # the release the app runs: a symlink in the app root, switched with one rename(2)


def release_dir(s: Settings, release: str = CURRENT) -> str:
    """A release's root on the server (default: the served one, through the `current` link)."""
    return posixpath.join(s.app_root, CURRENT) if release == CURRENT else posixpath.join(releases_dir(s), release)


def releases_dir(s: Settings) -> str:
    return posixpath.join(s.app_root, "releases")


def backend_dir(s: Settings, release: str = CURRENT) -> str:
    return posixpath.join(release_dir(s, release), s.backend.dir)


def project_dir(s: Settings, release: str = CURRENT) -> str:
    """The Python project's folder in a release: uv makes the venv there, whatever folder manage.py is in."""
    return posixpath.normpath(posixpath.join(release_dir(s, release), s.backend.python_project or s.backend.dir))


def venv_bin(s: Settings, name: str, release: str = CURRENT) -> str:
    return posixpath.join(project_dir(s, release), ".venv", "bin", name)


def static_root(s: Settings, release: str = CURRENT) -> str:
    return posixpath.join(backend_dir(s, release), s.backend.static_dir)


def export_dir(s: Settings, release: str = CURRENT) -> str:
    return posixpath.join(release_dir(s, release), s.frontend.dir, s.frontend.out)


def shared_dir(s: Settings) -> str:
    """What outlives a release: the .env, the database directory, media."""
    return posixpath.join(s.app_root, "shared")


def database_dir(s: Settings) -> str:
    return posixpath.join(shared_dir(s), "db")


def media_dir(s: Settings) -> str:
    return posixpath.join(shared_dir(s), "media")


def socket_path(s: Settings, release: str) -> str:
    return f"/run/{s.backend.unit}/{release}.sock"


def instance(s: Settings, release: str) -> str:
    """The backend's systemd instance of a release, without suffix: qms-backend@<release id>."""
    return f"{s.backend.unit}@{release}"


def release_links(s: Settings) -> dict[str, str]:
    """Links in each release to its Django project and its venv: the template unit names only these, so a change
    of qms.backend.dir or python_project never breaks an older release that a rollback starts again."""
    venv = posixpath.normpath(posixpath.join(s.backend.python_project or s.backend.dir, ".venv"))
    return {"app": posixpath.normpath(s.backend.dir), "venv": venv}


def code_paths(s: Settings) -> list[str]:
    """What a release takes from the repository: the Django project and the Python project (git archive)."""
    return sorted({posixpath.normpath(s.backend.dir), posixpath.normpath(s.backend.python_project or s.backend.dir)})


@dataclass(frozen=True)
class PythonProject:
    files: frozenset      # which of uv.lock, pyproject.toml, requirements.txt are there
    python: str           # the server's python3, such as 3.12.3
    requires: str         # pyproject's requires-python, or ""
    declared: bool = True  # pyproject has a [project] table: a Poetry-only one gives uv nothing to install


def python_project_command(directory: str) -> str:
    d = shlex.quote(directory)
    return (f"for f in uv.lock pyproject.toml requirements.txt; do [ -f {d}/$f ] && echo file=$f; done; "
            "echo python=$(python3 -c 'import sys; print(\"%d.%d.%d\" % sys.version_info[:3])'); "
            f"[ -f {d}/pyproject.toml ] && sed -n 's/^requires-python *= *//p' {d}/pyproject.toml | head -1 "
            f"| sed 's/^/requires=/'; [ -f {d}/pyproject.toml ] && ! grep -q '^\\[project\\]' {d}/pyproject.toml "
            "&& echo undeclared=yes; true")


def parse_python_project(output: str) -> PythonProject:
    found = [line.split("=", 1) for line in output.splitlines() if "=" in line]
    values = {k: v for k, v in found if k != "file"}
    return PythonProject(frozenset(v for k, v in found if k == "file"), values.get("python", ""),
                         values.get("requires", "").strip().strip("\"'"), values.get("undeclared") != "yes")


def _release(text: str) -> tuple:
    return tuple(int(part) for part in text.split("."))


def python_satisfies(version: str, spec: str) -> Optional[bool]:
    """Whether Python `version` meets a requires-python `spec` such as >=3.12 or >=3.10,<3.14; None when the
    spec is not one of the usual forms (then uv, not we, has the last word)."""
    v = _release(version)
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        match = re.fullmatch(r"(>=|<=|==|!=|~=|>|<)\s*(\d+(?:\.\d+)*)(\.\*)?", clause)
        if not match:
            return None
        op, wanted, star = match[1], _release(match[2]), bool(match[3])
        mine = v[:len(wanted)] if star or op == "~=" else v + (0,) * (len(wanted) - len(v))
        ok = {">=": mine >= wanted, "<=": mine <= wanted, ">": mine > wanted, "<": mine < wanted,
              "==": mine == wanted, "!=": mine != wanted,
              "~=": v >= wanted and v[:len(wanted) - 1] == wanted[:-1]}[op]
        if not ok:
            return False
    return True


def sync_command(project: PythonProject, uv: str) -> str:
    """How uv installs the dependencies: exactly the lock when there is one; else what the project asks for."""
    uv = shlex.quote(uv)
    if "uv.lock" in project.files:
        return f"{uv} sync --locked --no-dev"
    if "pyproject.toml" in project.files:
        return f"{uv} sync --no-dev"
    return (f"{{ [ -x .venv/bin/python ] || {uv} venv -q .venv; }} && "
            f"{uv} pip install --python .venv/bin/python -r requirements.txt")


DEPENDENCY_FILES = ("uv.lock", "pyproject.toml", "requirements.txt")


def reuse_venv_command(s: Settings, old: str, new: str) -> str:
    """Give release `new` the venv of release `old` when their dependency files are the same: hard links (uv's own
    install is mostly hard links into its cache too), each script's first line pointed at the new venv (a new file:
    the old release's stays as it was). Not when a .pth file names the old release (an editable install would import
    the old code). Prints `reused`, or `not reused: <why>`; exits 0 either way."""
    o, n = project_dir(s, old), project_dir(s, new)
    ov, nv = posixpath.join(o, ".venv"), posixpath.join(n, ".venv")
    q = shlex.quote
    checks = "; ".join(
        f"if [ -e {q(posixpath.join(o, f))} ] || [ -e {q(posixpath.join(n, f))} ]; then "
        f"cmp -s {q(posixpath.join(o, f))} {q(posixpath.join(n, f))} || {{ echo 'not reused: {f} differs'; exit 0; }}; fi"
        for f in DEPENDENCY_FILES)
    return (f"{checks}; [ -x {q(ov)}/bin/python ] || {{ echo 'not reused: release {old} has no venv'; exit 0; }}; "
            f"if grep -lsF -- {q(release_dir(s, old))} {q(ov)}/lib/python*/site-packages/*.pth >/dev/null; then "
            f"echo 'not reused: a .pth file names release {old}'; exit 0; fi; "
            f"cp -al {q(ov)} {q(nv)} && for f in {q(nv)}/bin/*; do "
            f"if [ -f \"$f\" ] && [ ! -L \"$f\" ] && [ \"$(head -c 2 \"$f\")\" = '#!' ]; then "
            f"sed -i {q(f'1s|^#!{ov}/|#!{nv}/|')} \"$f\"; fi; done && {q(nv)}/bin/python -c 'import sys' && echo reused")


def env_file(s: Settings) -> str:
    return posixpath.join(shared_dir(s), ".env")


def database_path(s: Settings) -> str:
    return posixpath.join(database_dir(s), posixpath.basename(s.backend.database))


def unit_paths(s: Settings) -> dict[str, str]:
    """The template units: one instance per release (unit@<release id>)."""
    return {kind: f"/etc/systemd/system/{s.backend.unit}@.{kind}" for kind in ("socket", "service")}


def render_units(s: Settings) -> dict[str, str]:
    """{'socket': text, 'service': text}: templates whose instance name is the release id; absolute paths only, so
    systemd needs no PATH (guide section 5)."""
    release = posixpath.join(releases_dir(s), "%i")
    context = {
        "unit": s.backend.unit, "user": s.backend.app_user, "asgi_app": s.backend.asgi_app,
        "backend_dir": posixpath.join(release, "app"), "env_file": env_file(s),
        "uvicorn": posixpath.join(release, "venv", "bin", "uvicorn"),
        "static_root": posixpath.join(release, "app", s.backend.static_dir), "release": release,
        "workers": s.backend.workers, "graceful_seconds": s.backend.graceful_seconds,
        "memory_max": s.backend.memory_max, "listen": socket_path(s, "%i"), "socket_group": s.nginx.user,
        # the SQLite directory (the database, its journal and WAL files) and media: all the app may write
        "writable": [database_dir(s), media_dir(s)],
    }
    return {kind: render_template("systemd", f"backend.{kind}.j2", context) for kind in ("socket", "service")}


def exec_start_problem(service_text: str, executable: Optional[bool], resolved: str = "") -> Optional[str]:
    """Why the unit's ExecStart cannot start (the guide's 203/EXEC), or None. `executable`: what the server said
    about the program (None when not asked yet), found at `resolved` (default: ExecStart's own path)."""
    line = next((l for l in service_text.splitlines() if l.startswith("ExecStart=")), None)
    if line is None:
        return "the unit has no ExecStart"
    program = shlex.split(line.partition("=")[2])[0].lstrip("-@:+!")
    if not program.startswith("/"):
        return (f"ExecStart runs {program!r}, not an absolute path: systemd does not search ~/.local/bin "
                f"(status=203/EXEC); give the absolute path")
    if executable is False:
        return f"ExecStart's {resolved or program} does not exist or is not executable on the server: run deps first"
    return None


def origins(s: Settings) -> list[str]:
    return [f"https://{d}" for d in s.domains]


def secret(s: Settings, name: str, why: str) -> str:
    value = s.secrets.get(name)
    if not value:
        raise UserError(f"{name} is missing from {s.secrets_path}: {why}")
    return value


def server_secrets(s: Settings) -> dict[str, str]:
    """The secrets file's keys the server's .env gets: every one but the tool's own (TOOL_KEYS), which go only when
    qms.backend.secret_env names them."""
    return {k: v for k, v in s.secrets.items() if k not in TOOL_KEYS or k in s.backend.secret_env}


def render_env(s: Settings) -> str:
    """The server's .env (systemd EnvironmentFile syntax: double quotes, backslash escapes, no $ expansion)."""
    key = secret(s, "SECRET_KEY", "add a long random value (see conf/secrets.env.example)")
    for name in s.backend.secret_env:
        secret(s, name, "qms.backend.secret_env lists it")
    tool = {
        "DEBUG": "0",
        # 127.0.0.1 and localhost: the health checks this tool runs on the server itself
        "ALLOWED_HOSTS": ",".join([*s.domains, "127.0.0.1", "localhost"]),
        "CORS_ALLOWED_ORIGINS": ",".join(origins(s)),
        "CSRF_TRUSTED_ORIGINS": ",".join(origins(s)),
        "DATABASE_PATH": database_path(s),
    }
    secrets = server_secrets(s)
    bad = sorted(name for name in secrets if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name))
    if bad:   # systemd would skip it with a warning in the journal, and the app would miss it
        raise UserError(f"{bad[0]} in {s.secrets_path} is not a variable name: use letters, digits and _ only")
    # one source per key: a secret that silently replaced a setting (DEBUG=1 from a copied dev .env) would go unseen
    both = sorted(secrets.keys() & s.backend.env.keys())
    if both:
        raise UserError(f"{both[0]} is in both {s.secrets_path} and qms.backend.env ({s.source}): keep it in one")
    replaced = sorted(secrets.keys() & tool.keys())
    if replaced:
        raise UserError(f"{replaced[0]} in {s.secrets_path} would replace the value this tool writes from the "
                        "settings: remove it there (to override it on purpose, set it in qms.backend.env)")
    lines = ["# Written by qms-deploy from the settings and the secrets file: edits here are overwritten."]
    for name, value in {"SECRET_KEY": key, **tool, **s.backend.env, **secrets}.items():
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'{name}="{escaped}"')
    return "\n".join(lines) + "\n"


def manage_command(s: Settings, args: str, release: str = CURRENT, extra_env_file: str = "",
                   writable: tuple = ()) -> str:
    """manage.py of a release in the service's environment: the app's user without privileges, the release's
    directory, the EnvironmentFile (read by systemd as root) and STATIC_ROOT; writing only the database and media
    (and `writable`). `extra_env_file` adds variables that must not appear on a command line (a password)."""
    user = shlex.quote(s.backend.app_user)
    props = [f"WorkingDirectory={backend_dir(s, release)}", f"EnvironmentFile={env_file(s)}",
             *([f"EnvironmentFile={extra_env_file}"] if extra_env_file else []),
             f"Environment=STATIC_ROOT={static_root(s, release)}", "NoNewPrivileges=yes", "UMask=0077",
             "ProtectSystem=strict",
             "ProtectHome=read-only", "PrivateTmp=yes", "PrivateDevices=yes",
             f"ReadWritePaths={' '.join([database_dir(s), media_dir(s), *writable])}"]
    # A killed systemd-run leaves its unit running (systemd 252): when the command's guard (tasks/core/host.py)
    # ends this shell, it stops the unit, so a migration never outlives the deploy that started it.
    return ("u=qms-manage-$$; trap 'systemctl stop -- \"$u\"' TERM; "
            f"systemd-run --unit=\"$u\" --quiet --pipe --wait --collect --uid={user} --gid={user} "
            + " ".join(f"-p {shlex.quote(p)}" for p in props)
            + f" {shlex.quote(venv_bin(s, 'python', release))} manage.py "
            + " ".join(shlex.quote(a) for a in shlex.split(args)) + " & wait $!")


def pending_migrations(showmigrations_plan: str) -> list[str]:
    """From `manage.py showmigrations --plan`: the migrations not applied yet, in order."""
    return [line.split("]", 1)[1].strip() for line in showmigrations_plan.splitlines()
            if line.strip().startswith("[ ]")]


def uv_candidates(s: Settings, home: str) -> list[str]:
    """Where uv may be: the setting, then the usual install places (~/.local/bin is where the guide had it)."""
    found = [s.backend.uv] if s.backend.uv else []
    return found + [posixpath.join(home, ".local/bin/uv"), "/usr/local/bin/uv", "/opt/uv/bin/uv", "/usr/bin/uv"]


def parse_env(text: str) -> dict[str, str]:
    """A .env as written by render_env (or by hand): key -> value, quotes and escapes undone, no interpolation."""
    import io

    from dotenv import dotenv_values
    return {k: v for k, v in dotenv_values(stream=io.StringIO(text), interpolate=False).items() if v is not None}


def env_changes(server_text: str | None, wanted_text: str) -> list[tuple[str, str]]:
    """(key, 'added' | 'removed' | 'changed') between the server's .env and the rendered one; values never shown."""
    old, new = parse_env(server_text or ""), parse_env(wanted_text)
    return sorted([(k, "added") for k in new.keys() - old.keys()] + [(k, "removed") for k in old.keys() - new.keys()]
                  + [(k, "changed") for k in new.keys() & old.keys() if old[k] != new[k]])
