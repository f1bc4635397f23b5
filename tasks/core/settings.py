"""Settings: every default in one place, a schema for each key, and one-line errors that name key and file.

An environment is a Fabric runtime config file, `conf/<env>.yaml`, chosen with `fab -f conf/<env>.yaml TASK`
(or `inv -f ...`, or FABRIC_RUNTIME_CONFIG / INVOKE_RUNTIME_CONFIG). Our keys live under `qms:`; the rest of the
file may hold Fabric's own settings (`user`, `ssh_config_path`, `connect_kwargs`, ...). Secrets never live here:
they come from the dotenv file named by `qms.secrets_file` (git-ignored), see tasks/core/secrets.py.
"""
from __future__ import annotations

import difflib
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from .errors import UserError
from .secrets import TOOL_KEYS, why_secret

# The project root: relative paths in settings are taken from here, whatever the current directory.
PROJECT_ROOT = Path(__file__).resolve().parents[2]

Check = Callable[[Any], Optional[str]]   # returns what was expected, or None when the value is fine


def _expect(ok: Callable[[Any], bool], expected: str) -> Check:
    return lambda value: None if ok(value) else expected


def text(value: Any) -> Optional[str]:
    return None if isinstance(value, str) and value.strip() else "a non-empty string"


def integer(low: int, high: int) -> Check:
    return _expect(lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high,
                   f"an integer from {low} to {high}")


# Paths on the server: POSIX, so `\` (a Windows habit) would make a folder literally named `web\frontend` there.
absolute_path = _expect(lambda v: isinstance(v, str) and v.startswith("/") and ".." not in v.split("/")
                        and "\\" not in v, "an absolute path with / such as /home/ubuntu/QMS")
relative_path = _expect(lambda v: isinstance(v, str) and v and not v.startswith("/") and ".." not in v.split("/")
                        and "\\" not in v, "a relative path with / and without '..', such as frontend or web/frontend")
local_path = _expect(lambda v: isinstance(v, str) and bool(v.strip()), "a local path (relative to the project root)")
# A URL path inside a prefix: the characters a URL may hold as they are (RFC 3986), so no whitespace, control
# characters or quotes; it also reaches curl on the server (quoted there).
url_subpath = _expect(lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9._~!$&'()*+,;=:@%/?-]+", v)
                      is not None and not v.startswith("/") and ".." not in v.split("/"),
                      "a URL path inside the prefix, without a leading /, spaces or control characters, such as "
                      "health/")
url_prefix = _expect(lambda v: isinstance(v, str) and re.fullmatch(r"/([A-Za-z0-9._~-]+/)+", v) is not None,
                     "a URL path that starts and ends with '/', such as /django-admin/")
unit_name = _expect(lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9:_.@-]+", v) is not None,
                    "a systemd unit name without .service, such as qms-backend")
asgi_app = _expect(lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", v) is not None,
                   "module:attribute, such as backend.asgi:application")


def _git_name(v: Any) -> bool:
    """git check-ref-format's rules for a branch (or remote) name; a leading - would reach git as an option."""
    return (isinstance(v, str) and bool(v) and not v.startswith("-") and not v.endswith((".", "/")) and v != "@"
            and ".." not in v and "@{" not in v and re.search(r"[\x00-\x20\x7f~^:?*\[\\]", v) is None
            and all(part and not part.startswith(".") and not part.endswith(".lock") for part in v.split("/")))


git_name = _expect(_git_name, "a git name without a leading -, spaces, '..' or any of ~^:?*[\\, such as main")
hostname = re.compile(r"(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9-]{1,63})*")
domain_list = _expect(lambda v: isinstance(v, list) and all(isinstance(d, str) and hostname.fullmatch(d) for d in v),
                      "a list of domain names, such as [qms.example.com, www.qms.example.com]")


http_url = _expect(lambda v: isinstance(v, str) and re.fullmatch(r"https?://[^\s/]+(/\S*)?", v) is not None,
                  "an http(s) URL such as https://qms.example.com/api")
string_map = _expect(lambda v: isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, str)
                                                           for k, x in v.items()),
                     "a mapping of NAME: value strings")


def with_placeholders(check: Check, *names: str) -> Check:
    """`check`, and no {placeholder} but `names`: the value is filled in with str.format, which would end in a
    traceback on any other."""
    known = ", ".join("{%s}" % n for n in names)

    def checked(value: Any) -> Optional[str]:
        expected = check(value)
        if expected:
            return expected
        try:
            unknown = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None and f not in names]
        except ValueError:   # a lone { or }
            return f"a value with no placeholder but {known}, and {{{{ and }}}} for a literal brace"
        return f"a value with no placeholder but {known} ({{{unknown[0]}}} is unknown)" if unknown else None
    return checked


def one_of(*choices: str) -> Check:
    return _expect(lambda v: v in choices, "one of " + ", ".join(choices))


def optional(check: Check) -> Check:
    return lambda value: None if value is None else check(value)


@dataclass(frozen=True)
class Field:
    default: Any
    check: Check
    help: str


# Every default, matching the guide (GUIDE.md). Later features add their keys here and nowhere else.
SCHEMA: dict = {
    "env": Field(None, optional(text), "name of the environment; defaults to the settings file's name"),
    "host": Field(None, optional(text), "ssh target: an ssh-config alias or [user@]host[:port]; -H overrides it"),
    "user": Field("ubuntu", text, "login on the server and owner of the app"),
    "app_root": Field("/home/ubuntu/QMS", absolute_path, "the app's git clone on the server"),
    "branch": Field("main", git_name, "branch the server follows"),
    "repo": Field(None, optional(text), "git URL the server clones and pulls from"),
    "git_remote": Field("origin", git_name, "the local git remote that is `repo`: deploy checks the commit is there "
                        "(deploy --push pushes it)"),
    "domains": Field([], domain_list, "public names of the site; the first is the canonical one"),
    "app_dir": Field(".", local_path, "local checkout of the app (holds frontend/ and backend/)"),
    "secrets_file": Field("conf/{env}.env", with_placeholders(local_path, "env"),
                          "git-ignored dotenv file with this environment's secrets: the server's .env gets every key "
                          "but the tool's own (see backend.secret_env)"),
    "keep_releases": Field(5, integer(2, 100), "whole-app releases kept on the server for rollback (the oldest are "
                           "pruned; never the served one or the one before it)"),
    "frontend": {
        "dir": Field("frontend", relative_path, "the Next.js app, inside app_dir and app_root"),
        "out": Field("out", relative_path, "the static export, inside frontend.dir"),
        "api_url": Field(None, optional(http_url),
                         "NEXT_PUBLIC_API_URL baked into the build; default https://<first domain>/api"),
        "build_env": Field({}, string_map, "more build-time variables (NEXT_PUBLIC_*), name: value"),
        "bundle_allow": Field([], _expect(lambda v: isinstance(v, list) and all(isinstance(x, str) and x for x in v),
                                          "a list of non-empty strings"),
                              "local or undefined/ addresses the bundle check lets pass: each entry allows every hit "
                              "whose text or printed context contains it"),
        "build_min_memory_mb": Field(1536, integer(0, 1 << 20),
                                     "build refuses to start on a machine with less memory (RAM or its cgroup's "
                                     "limit): `next build` wants about 1.5 GB and hung on the guide's 1 GB server; 0 "
                                     "builds anyway"),
    },
    "backend": {
        "dir": Field("backend", relative_path, "the Django project (where manage.py is), inside app_dir and app_root"),
        "python_project": Field(None, optional(relative_path),
                                "the folder with pyproject.toml (+ uv.lock) or requirements.txt, inside app_dir and "
                                "app_root, when it is not backend.dir (such as . for the repository root); its .venv "
                                "runs the app"),
        "unit": Field("qms-backend", _expect(lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9:_.-]+", v)
                                             is not None, "a unit name without @ or a suffix, such as qms-backend"), "systemd template unit of the backend: one instance per release, "
                      "unit@<release id>, each on its own socket /run/<unit>/<release id>.sock"),
        "app_user": Field("qms", _expect(lambda v: isinstance(v, str) and re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", v)
                                         is not None, "a user name such as qms"), "the system user the app runs as (made by setup: no sudo, no login "
                          "shell); it may write only the database directory and media"),
        "asgi_app": Field("backend.asgi:application", asgi_app, "the ASGI application uvicorn serves"),
        "admin_prefix": Field("/django-admin/", url_prefix, "URL prefix of the Django admin"),
        "api_prefix": Field("/api/", url_prefix, "URL prefix of the API, proxied to the backend"),
        "static_url": Field("/static/", url_prefix, "Django's STATIC_URL, served by nginx"),
        "static_dir": Field("staticfiles", relative_path, "Django's STATIC_ROOT inside backend.dir of each release (collectstatic)"),
        "database": Field("db.sqlite3", relative_path, "the SQLite file's path in the repository, inside backend.dir; on the server it lives in "
                      "<app_root>/shared/db/ under its own name (DATABASE_PATH)"),
        "standby": Field(True, _expect(lambda v: isinstance(v, bool), "true or false"),
                         "keep the backend of the release a plain `rollback` returns to running (on its own socket, "
                         "no traffic), so that rollback switches at once; costs that backend's memory "
                         "(bench/README.md)"),
        "workers": Field(2, integer(2, 16), "uvicorn workers (2 or more: SIGHUP then restarts them one by one)"),
        "memory_max": Field("400M", _expect(lambda v: isinstance(v, str) and re.fullmatch(r"\d+[KMG]", v) is not None,
                                            "a size such as 400M"), "systemd MemoryMax of the backend (1 GB box)"),
        "graceful_seconds": Field(20, integer(1, 600), "how long a stopping worker may finish its requests"),
        "exposure_max": Field(2.0, _expect(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                                           and 0 <= v <= 10, "a number from 0 to 10"),
                              "doctor warns when `systemd-analyze security` rates the unit's exposure above this "
                              "(0 safest, 10 unprotected)"),
        "uv": Field(None, optional(absolute_path), "absolute path of uv on the server (default: found, or installed)"),
        "env": Field({}, string_map, "more plain variables for the server's .env (committed: a value that looks "
                     "secret is refused; secrets go in the secrets file, whose keys the server's .env gets too)"),
        "secret_env": Field([], _expect(lambda v: isinstance(v, list) and all(
            isinstance(n, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n) for n in v), "a list of variable names"),
                            f"the tool's own keys of the secrets file ({', '.join(TOOL_KEYS)}) stay on this "
                            "machine; those listed here go to the server's .env too and must be in the file, such as "
                            "[AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY] for an app that uses the same bucket (every "
                            "other key goes anyway)"),
    },
    "nginx": {
        "site": Field("qms", unit_name, "name of the nginx site file"),
        "user": Field("www-data", text, "the user nginx reads files as"),
        "rate": Field("10r/s", _expect(lambda v: isinstance(v, str) and re.fullmatch(r"\d+r/[sm]", v) is not None,
                                       "a rate such as 10r/s or 600r/m"), "API rate limit per client address"),
        "burst": Field(20, integer(0, 10000), "requests over the rate that are queued before 503s"),
        "client_max_body_size": Field("10m", _expect(lambda v: isinstance(v, str) and re.fullmatch(r"\d+[kKmMgG]?", v)
                                                     is not None, "a size such as 10m"), "largest request body"),
        "acme_root": Field("/var/www/letsencrypt", absolute_path, "webroot for certbot's HTTP-01 challenges"),
        "server_extra": Field("", _expect(lambda v: isinstance(v, str), "nginx directives as a string"),
                              "extra directives for the server block that serves the site (linted with it)"),
    },
    "smoke": {
        "pages": Field(["/"], _expect(lambda v: isinstance(v, list) and all(
            isinstance(p, str) and p.startswith("/") for p in v), "a list of URL paths starting with /"),
                       "frontend pages checked after a reload, such as [/, /login/] (the admin prefix and the API "
                       "health endpoint are added)"),
        "health_path": Field("health/", url_subpath, "the health endpoint, inside backend.api_prefix: a path "
                             "that answers 200 once the app can serve (README, Prepare your app)"),
    },
    "tls": {
        "email": Field(None, optional(_expect(lambda v: isinstance(v, str) and re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", v)
                                              is not None, "an email address")),
                       "address Let's Encrypt writes to about expiring certificates"),
        "acme_server": Field(None, optional(http_url),
                             "ACME directory URL; default Let's Encrypt (the stand-in uses its own pebble)"),
        "renew_before_days": Field(30, integer(1, 89), "tls --check fails when the certificate expires sooner"),
        "reachability_check": Field(True, _expect(lambda v: isinstance(v, bool), "true or false"),
                                    "setup asks for a certificate only once every domain reaches this server over "
                                    "HTTP (false: ask anyway, for an ACME server with DNS of its own)"),
    },
    "backups": {
        "keep": Field(14, integer(1, 1000), "database backups kept on the server (the oldest go first)"),
        "max_age_days": Field(30, integer(0, 3650), "also remove server backups older than this (0: no limit)"),
        "local_dir": Field("backups/{env}", with_placeholders(local_path, "env"),
                           "where --download and restores from local keep backups"),
        "schedule": Field("daily", text, "systemd OnCalendar of `backup --schedule` (daily, hourly, Mon *-*-* 03:00)"),
        "s3": {
            "bucket": Field(None, optional(text), "S3 bucket for off-site copies (none: no S3)"),
            "prefix": Field("qms/{env}/", with_placeholders(text, "env"), "key prefix inside the bucket"),
            "endpoint_url": Field(None, optional(http_url), "an S3-compatible store's URL (default: AWS)"),
            "region": Field(None, optional(text), "AWS region of the bucket"),
            "sse": Field("AES256", one_of("AES256", "aws:kms", "none"), "server-side encryption of uploads"),
        },
    },
    "setup": {
        "packages": Field(["nginx", "certbot", "python3-venv", "sqlite3", "git", "curl", "ca-certificates"],
                          _expect(lambda v: isinstance(v, list) and all(isinstance(p, str) and re.fullmatch(
                              r"[a-z0-9][a-z0-9+.-]+", p) for p in v), "a list of Debian package names"),
                          "system packages setup installs when missing (apt-get)"),
        "superuser": Field("admin", _expect(lambda v: isinstance(v, str), "a user name, or '' for none"),
                           "Django superuser setup creates once, password DJANGO_SUPERUSER_PASSWORD from the secrets "
                           "file ('' : none)"),
        "superuser_email": Field("", _expect(lambda v: isinstance(v, str), "an email address or ''"),
                                 "email of that superuser"),
        "seed_command": Field("", _expect(lambda v: isinstance(v, str), "a manage.py command or ''"),
                              "manage.py command setup runs once, on the first setup, such as loaddata initial.json "
                              "('': none)"),
    },
    "browser": {
        "path": Field(None, optional(text), "Chromium or Chrome for browser-check (default: found on PATH or in the "
                                            "usual install places; never downloaded)"),
        "pages": Field([], _expect(lambda v: isinstance(v, list) and all(isinstance(p, str) and p.startswith("/")
                                                                          for p in v), "a list of URL paths"),
                       "pages browser-check opens (default: qms.smoke.pages)"),
        "resolve_to_server": Field(False, _expect(lambda v: isinstance(v, bool), "true or false"),
                                   "open the domains at the server's own address (before DNS points there, or the "
                                   "stand-in)"),
        "insecure_tls": Field(False, _expect(lambda v: isinstance(v, bool), "true or false"),
                              "accept a certificate the browser does not trust (a test ACME server only)"),
        "timeout": Field(20, integer(1, 300), "seconds a page may take to load and go quiet"),
    },
    "secrets_check": {
        # dotenv files (conf/<env>.env too), TLS and ssh private keys, SQLite databases with their compressed
        # copies and the journal/WAL files beside them, dumps and backups
        "patterns": Field([".env", ".env.*", "*.env", "*.pem", "*.key", "*.crt", "id_rsa*", "id_ed25519*",
                           "id_ecdsa*", "id_dsa*", "*.sqlite3", "*.sqlite3.*", "*-journal", "*-wal", "*-shm",
                           "*.sql.gz", "*.dump", "*.bak", "backups/", "null"],
                          _expect(lambda v: isinstance(v, list) and all(isinstance(p, str) and p for p in v),
                                  "a list of file name patterns"),
                          "files git must never hold; `name/` means a directory anywhere (guide section 10)"),
        "allowed": Field(["*.example"], _expect(lambda v: isinstance(v, list) and all(isinstance(p, str) for p in v),
                                                "a list of file name patterns"), "exceptions, such as .env.example"),
    },
    "ssh": {
        "known_hosts": Field(None, optional(local_path),
                             "known_hosts file to check host keys against (default: ssh config, then ~/.ssh)"),
        "new_host_keys": Field("reject", one_of("reject", "accept"),
                               "a host not in known_hosts: reject (run trust-host first) or accept and record it"),
        "command_timeout": Field(300, integer(10, 86400),
                                 "seconds one command on the server may run before it is stopped and the task fails "
                                 "(and a deploy is put back)"),
        "long_timeout": Field(3600, integer(10, 86400),
                              "the same for the commands that may take long: packages, a release's venv, migrations, "
                              "a backup, a certificate"),
    },
}


def defaults(schema: dict = SCHEMA) -> dict:
    return {key: defaults(spec) if isinstance(spec, dict) else spec.default for key, spec in schema.items()}


def fields(schema: dict = SCHEMA, prefix: str = "qms") -> list[tuple[str, Field]]:
    """Every (dotted key, field), for docs and `settings --list`."""
    out = []
    for key, spec in schema.items():
        name = f"{prefix}.{key}"
        out.extend(fields(spec, name) if isinstance(spec, dict) else [(name, spec)])
    return out


def check_layer(data: Any, source: str, schema: dict = SCHEMA, prefix: str = "qms") -> Optional[str]:
    """The first problem in one layer of settings (a dict as read from `source`), as a one-line message."""
    if not isinstance(data, dict):
        return f"{source}: {prefix} must be a mapping of settings, got {type(data).__name__}"
    for key, value in data.items():
        name = f"{prefix}.{key}"
        if key not in schema:
            close = difflib.get_close_matches(str(key), [str(k) for k in schema], n=1)
            hint = f"did you mean {prefix}.{close[0]}?" if close else "see docs/settings.md for the known keys"
            return f"{source}: unknown setting {name}: {hint}"
        spec = schema[key]
        if isinstance(spec, dict):
            problem = check_layer(value, source, spec, name)
            if problem:
                return problem
            continue
        expected = spec.check(value)
        if expected:
            return f"{source}: {name} must be {expected}, got {value!r}"
    return None


class Settings:
    """Checked settings with attribute access: `s.backend.unit`. `source` names where they came from."""

    def __init__(self, values: dict, source: str, secrets: Optional[dict] = None, schema: Optional[dict] = None):
        self._values = values
        self._schema = SCHEMA if schema is None else schema
        self.source = source
        self.secrets = secrets or {}
        self.secrets_path: Optional[Path] = None

    def __getattr__(self, key: str) -> Any:
        try:
            value = self._values[key]
        except KeyError:
            raise AttributeError(key) from None
        section = self._schema.get(key)
        return Settings(value, self.source, self.secrets, section) if isinstance(section, dict) else value

    def require(self, key: str, why: str) -> Any:
        """A value the caller cannot do without; missing -> a one-line error with the fix."""
        node: Any = self._values
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node in (None, "", []):
            spec = _field(key)
            raise UserError(f"{self.source}: qms.{key} is not set, and {why} needs it: set it to {spec.help}")
        return node

    def local_path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else PROJECT_ROOT / path

    def as_dict(self) -> dict:
        return self._values


def _field(dotted: str) -> Field:
    node: Any = SCHEMA
    for part in dotted.split("."):
        node = node[part]
    return node


def resolve(layers: list[tuple[str, Any]], merged: dict, runtime_path: Optional[str]) -> Settings:
    """Check each config layer that holds `qms` settings, then return the merged ones.

    `layers` is [(source path, that file's whole content)], `merged` the `qms` dict Invoke merged from them.
    """
    for source, data in layers:
        if data is None:
            continue
        if not isinstance(data, dict):
            raise UserError(f"{source}: expected a mapping of settings at the top level, got {type(data).__name__}")
        if "qms" in data:
            problem = check_layer(data["qms"], source)
            if problem:
                raise UserError(problem)
    source = runtime_path or "the built-in defaults"
    problem = check_layer(merged, source)
    if problem:
        raise UserError(problem)
    values = {**merged}
    if not values.get("env") and runtime_path:
        values["env"] = Path(runtime_path).stem
    if values.get("env") and not re.fullmatch(r"[a-z][a-z0-9_-]*", values["env"]):
        raise UserError(f"{source}: qms.env must be a lowercase name such as production, got {values['env']!r}")
    secrets_file = values["secrets_file"].format(env=values["env"]) if values.get("env") else "the secrets file"
    for where, data in [*((path, d.get("qms")) for path, d in layers if isinstance(d, dict)), (source, merged)]:
        problem = committed_secret(data, where, secrets_file)
        if problem:
            raise UserError(problem)
    return Settings(values, source)


def committed_secret(qms: Any, source: str, secrets_file: str) -> Optional[str]:
    """A value of qms.backend.env (committed with the settings) that looks secret, named without its value."""
    backend = qms.get("backend") if isinstance(qms, dict) else None
    env = backend.get("env") if isinstance(backend, dict) else None
    for key, value in (env or {}).items():
        why = why_secret(key, value)
        if why:
            return (f"{source}: qms.backend.env.{key} looks like a secret ({why}): move it to {secrets_file}, the "
                    "git-ignored secrets file (the server's .env gets its keys too)")
    return None


def check_top_level(data: Any, source: str, known: set) -> None:
    """A settings file may hold Fabric's own keys and `qms`; anything else is a typo."""
    if data is None:
        return
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a mapping of settings at the top level, got {type(data).__name__}")
    for key in data:
        if key != "qms" and key not in known:
            close = difflib.get_close_matches(str(key), sorted(known | {"qms"}), n=1)
            hint = f"did you mean {close[0]}?" if close else "our settings go under qms:"
            raise UserError(f"{source}: unknown top-level key {key}: {hint}")


def markdown_reference() -> str:
    """docs/settings.md, generated so that it cannot drift (tests/unit/test_settings.py says how to regenerate)."""
    rows = [f"| `{key}` | `{field.default!r}` | {field.help} |" for key, field in fields()]
    return "\n".join([
        "# Settings reference",
        "",
        "Every key under `qms:` in a settings file (`conf/<env>.yaml`), its default and meaning. Generated from",
        "`tasks/core/settings.py`; `fab -f conf/<env>.yaml settings --all` shows the same with your values.",
        "",
        "| key | default | meaning |",
        "|---|---|---|",
        *rows,
        "",
    ])
