"""app-check's checks: does an app fit this tool, before its first `setup`? Each check reads the app's own files (no
server, no network) and returns findings naming the file:line and the exact change to make. Git runs in the task
(tasks/app_check.py) and its answers come in as data, so tests feed texts, paths and file lists."""
from __future__ import annotations

import ast
import json
import os
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

from .backend_plan import python_satisfies, server_secrets
from .checks import FAIL, OK, READS_ENV, WARN, Finding

Reader = Callable[[str], Optional[tuple]]   # dotted module -> (its file relative to the app dir, its text), or None

SKIP_DIRS = {"node_modules", ".next", ".git", ".venv", "venv", "__pycache__"}
JS_SUFFIXES = (".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs")
NEXT_CONFIGS = ("next.config.js", "next.config.mjs", "next.config.ts", "next.config.cjs")
API_URL_FIX = ("read the API base from process.env.NEXT_PUBLIC_API_URL (the tool sets it at build time from "
               "qms.frontend.api_url)")
# The variables the server's .env holds (backend_plan.render_env; a unit test keeps the two equal).
TOOL_ENV = ("SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "CORS_ALLOWED_ORIGINS", "CSRF_TRUSTED_ORIGINS", "DATABASE_PATH",
            "STATIC_ROOT")
# The servers' python3: uv builds the venv with it, and deps refuses one that requires-python excludes.
SERVER_PYTHONS = (("3.12.3", "Ubuntu 24.04's python3"), ("3.11.2", "Debian 12's, the stand-in's"))


@dataclass(frozen=True)
class Layout:
    """What the settings say about the app; folders relative to the app dir (qms.app_dir), POSIX."""
    frontend: str
    out: str
    backend: str
    python_project: Optional[str]
    static_dir: str
    database: str
    api_prefix: str
    admin_prefix: str
    health_path: str
    asgi_app: str
    build_env: dict = field(default_factory=dict)
    backend_env: dict = field(default_factory=dict)
    domains: tuple = ()
    api_url: Optional[str] = None   # qms.frontend.api_url; None: https://<first domain> + the API prefix

    @classmethod
    def of(cls, s) -> "Layout":
        b = s.backend
        return cls(frontend=join(s.frontend.dir), out=s.frontend.out, backend=join(b.dir),
                   python_project=b.python_project and join(b.python_project), static_dir=b.static_dir,
                   database=b.database, api_prefix=b.api_prefix, admin_prefix=b.admin_prefix,
                   health_path=s.smoke.health_path, asgi_app=b.asgi_app, build_env=dict(s.frontend.build_env),
                   backend_env={**dict(b.env), **dict.fromkeys([*server_secrets(s), *b.secret_env], '')},
                   domains=tuple(s.domains), api_url=s.frontend.api_url)


def join(*parts: str) -> str:
    return posixpath.normpath(posixpath.join(*parts))


def read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def walk(root: Path, skip: set = frozenset()) -> Iterator[Path]:
    """Files under root, sorted, without dependencies, build output and `skip` (absolute folders)."""
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and Path(directory, d) not in skip)
        yield from (Path(directory, name) for name in sorted(files))


# -- the frontend ----------------------------------------------------------------------------------------------
JS_TOKENS = re.compile(r"""("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|`(?:\\.|[^`\\])*`)|(/\*.*?\*/|//[^\n]*)""", re.S)
LOCAL_URL = re.compile(r"(?:https?|wss?)://(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\])(?::\d+)?[^\s'\"`)]*")
PUBLIC_ENV = re.compile(r"process\.env\.(NEXT_PUBLIC_\w+)|process\.env\[\s*['\"](NEXT_PUBLIC_\w+)['\"]\s*\]")
OUTPUT = re.compile(r"\boutput\s*:\s*(?:(['\"`])([\w-]*)\1)?")
CONFIG_OBJECT = re.compile(r"^(?:const|let|var|module\.exports|export\s+default)\b[^\n]*\{[ \t]*$", re.M)
NEXT_IMAGE = re.compile(r"""['"]next/(?:legacy/)?image['"]""")
SERVER_ONLY = (   # (in the source, what needs a server, the change); a static export has none
    (re.compile(r"\bgetServerSideProps\b"), "getServerSideProps renders on a server per request",
     "use getStaticProps, or fetch from the API in the browser"),
    (re.compile(r"^\s*['\"]use server['\"]", re.M), "a Server Action ('use server')",
     "call an endpoint of the Django API instead"),
    (re.compile(r"""['"]next/headers['"]"""), "next/headers (cookies(), headers()) reads a request",
     "read cookies in the browser, or let Django handle them"),
    (re.compile(r"\bdynamic\s*=\s*['\"]force-dynamic['\"]"), "dynamic = 'force-dynamic' renders per request",
     "remove it: an export renders each page once, at build time"),
    (re.compile(r"\brevalidate\s*[:=]\s*[1-9]"), "revalidate (ISR) regenerates pages on a server",
     "remove it: each deploy builds every page again"),
    (re.compile(r"\bfallback\s*:\s*(?:true|['\"]blocking['\"])"), "getStaticPaths' fallback renders new paths on "
     "a server", "fallback: false, and list every path at build time"),
)


def strip_js_comments(text: str) -> str:
    """Comments blanked, strings and line numbers kept: an example URL in a comment is not a call."""
    return JS_TOKENS.sub(lambda m: m.group(1) or re.sub(r"[^\n]", " ", m.group(2)), text)


def frontend_findings(app: Path, layout: Layout) -> list[Finding]:
    root = app / layout.frontend
    if not root.is_dir():
        return [Finding("frontend", WARN, f"no {layout.frontend}/ in {app}: the frontend is not checked",
                        "set qms.frontend.dir to the Next.js app's folder inside qms.app_dir (build needs it)")]
    sources = {path.relative_to(app).as_posix(): strip_js_comments(read_text(path))
               for path in walk(root, {root / layout.out}) if path.name.endswith(JS_SUFFIXES)}
    package = root / "package.json"
    config = next((join(layout.frontend, name) for name in NEXT_CONFIGS if (root / name).is_file()), None)
    config_text = sources.get(config, "") if config else ""
    return (package_findings(join(layout.frontend, "package.json"), read_text(package) if package.is_file() else None,
                             {p.name for p in root.glob("*lock*") if p.is_file()})
            + next_config_findings(config, config_text, layout)
            + server_feature_findings(sources, layout.frontend, config_text)
            + local_url_findings(sources) + public_env_findings(sources, layout.build_env)
            + doubled_prefix_findings(sources, layout))


def mapping(value) -> dict:
    """A JSON object, or {} for anything else a broken package.json holds there."""
    return value if isinstance(value, dict) else {}


def package_findings(label: str, text: Optional[str], locks: set) -> list[Finding]:
    check, folder = "frontend: package.json", posixpath.dirname(label) or "."
    if text is None:
        return [Finding(check, FAIL, f"no {label}", "set qms.frontend.dir to the Next.js app's folder (the one with "
                                                   "package.json), inside qms.app_dir")]
    try:
        package = json.loads(text)
    except json.JSONDecodeError as error:
        return [Finding(check, FAIL, f"{label}:{error.lineno}: not valid JSON ({error.msg})", "fix the syntax there")]
    package = mapping(package)
    deps = {**mapping(package.get("devDependencies")), **mapping(package.get("dependencies"))}
    build = mapping(package.get("scripts")).get("build", "")
    if "next" not in deps:
        rows = [Finding(check, FAIL, f"{label}: next is not among the dependencies",
                        f"this tool builds a Next.js export: npm install next in {folder}/, or point qms.frontend.dir "
                        "at the Next.js app")]
    elif not build:
        rows = [Finding(check, FAIL, f"{label}: no build script", 'add "build": "next build" to "scripts" (build runs '
                                                                   'npm run build)')]
    elif "next export" in build:
        rows = [Finding(check, FAIL, f"{label}: the build script runs next export (gone since Next.js 14)",
                        """write "build": "next build" (output: 'export' in next.config makes the export)""")]
    else:
        rows = [Finding(check, OK, f"{label}: next {deps['next']}, build: {build}")]
    if "package-lock.json" not in locks:
        others = sorted(locks)
        rows.append(Finding("frontend: package-lock.json", FAIL,
                            f"no {folder}/package-lock.json" + (f" ({', '.join(others)} instead)" if others else ""),
                            f"npm install in {folder}/, then commit package-lock.json (build installs with npm ci, "
                            "which needs it)"))
    return rows


def next_config(frontend: Path) -> tuple[Optional[str], str]:
    """(the next.config file's name, its text without comments), or (None, "")."""
    name = next((name for name in NEXT_CONFIGS if (frontend / name).is_file()), None)
    return name, strip_js_comments(read_text(frontend / name)) if name else ""


def next_config_findings(label: Optional[str], text: str, layout: Layout) -> list[Finding]:
    """`text` with comments stripped."""
    check = "frontend: output: 'export'"
    if label is None:
        return [Finding(check, FAIL, f"no next.config.{{js,mjs,ts,cjs}} in {layout.frontend}/",
                        f"create {join(layout.frontend, 'next.config.mjs')}:\n"
                        "const nextConfig = { output: 'export' };\nexport default nextConfig;")]
    why = "nginx serves the static export; no Node server runs"
    found = OUTPUT.search(text)
    if found and found[2] == "export":
        rows = [Finding(check, OK, f"{label}:{line_of(text, found.start())}: output: 'export'")]
    elif found:
        where = f"{label}:{line_of(text, found.start())}"
        rows = [Finding(check, FAIL, f"{where}: output: {found[1] or ''}{found[2] or '...'}{found[1] or ''}",
                        f"{where}: write output: 'export' ({why})")]
    else:
        opening = CONFIG_OBJECT.search(text)
        after = f", after line {line_of(text, opening.start())}: {opening[0].strip()}" if opening else ""
        rows = [Finding(check, FAIL, f"{label}: no output: 'export', so build makes no {layout.out}/ ({why})",
                        f"add the line  output: 'export',  to the config object in {label}{after}")]
    dist = re.search(r"\bdistDir\s*:\s*['\"]([^'\"]+)['\"]", text)
    if dist and join(dist[1]) != join(layout.out):
        rows.append(Finding("frontend: export folder", FAIL, f"{label}:{line_of(text, dist.start())}: distDir "
                            f"'{dist[1]}' puts the export in {dist[1]}/, not {layout.out}/ (qms.frontend.out)",
                            f"set qms.frontend.out: {dist[1]}"))
    for unused in re.finditer(r"^\s*(?:async\s+)?(rewrites|redirects|headers)\b\s*[(:]", text, re.M):
        rows.append(Finding("frontend: next.config", WARN, f"{label}:{line_of(text, unused.start(1))}: "
                            f"{unused[1]} do nothing in a static export",
                            "remove them: nginx serves the export (the browser calls NEXT_PUBLIC_API_URL; "
                            "nginx directives go in qms.nginx.server_extra)"))
    return rows


def server_feature_findings(sources: dict, frontend: str, config_text: str) -> list[Finding]:
    """Features that need a Node server, which a static export does not have. `sources`: label -> stripped text."""
    check, rows, image = "frontend: server-only feature", [], None
    move = "move it to a Django view under qms.backend.api_prefix (nginx sends that prefix to Django), then delete it"
    for label, text in sorted(sources.items()):
        rel = posixpath.relpath(label, frontend)
        rel = rel[len("src/"):] if rel.startswith("src/") else rel
        if rel.startswith("pages/api/"):
            rows.append(Finding(check, FAIL, f"{label}: an API route (pages/api/) runs on a Node server", move))
        elif rel.startswith("app/api/") and posixpath.basename(rel).split(".")[0] == "route":
            rows.append(Finding(check, FAIL, f"{label}: a route handler (app/api/) runs on a Node server", move))
        elif posixpath.splitext(rel)[0] == "middleware":
            rows.append(Finding(check, FAIL, f"{label}: middleware runs on a Node server",
                                "remove it (redirects and headers belong in nginx: qms.nginx.server_extra)"))
        for pattern, what, fix in SERVER_ONLY:
            found = pattern.search(text)
            if found:
                rows.append(Finding(check, FAIL, f"{label}:{line_of(text, found.start())}: {what}", fix))
        found = NEXT_IMAGE.search(text)
        image = image or (found and f"{label}:{line_of(text, found.start())}")
    if image and not re.search(r"\bunoptimized\s*:\s*true\b|\bloader(?:File)?\s*:", config_text):
        rows.append(Finding(check, FAIL, f"{image}: next/image's default loader optimizes images on a server",
                            "add images: { unoptimized: true } to next.config"))
    return rows or [Finding(check, OK, "none: no API routes, middleware, getServerSideProps, Server Actions, ISR")]


def local_url_findings(sources: dict) -> list[Finding]:
    rows = []
    for label, text in sorted(sources.items()):
        hits = [(line_of(text, m.start()), m[0]) for m in LOCAL_URL.finditer(text)]
        if hits:
            rows.append(Finding("frontend: local API URL", FAIL,
                                f"{label}:{','.join(str(line) for line, _ in hits)}: {hits[0][1]}", API_URL_FIX))
    return rows or [Finding("frontend: local API URL", OK, "no localhost, 127.0.0.1 or 0.0.0.0 URL in the source")]


def public_env_findings(sources: dict, build_env: dict) -> list[Finding]:
    check, seen = "frontend: NEXT_PUBLIC_* names", {}
    for label, text in sorted(sources.items()):
        for found in PUBLIC_ENV.finditer(text):
            seen.setdefault(found[1] or found[2], f"{label}:{line_of(text, found.start())}")
    unset = {name: where for name, where in seen.items() if name != "NEXT_PUBLIC_API_URL" and name not in build_env}
    listing = ", ".join(f"{name} ({where})" for name, where in unset.items())
    set_them = "set qms.frontend.build_env: {" + ", ".join(f"{name}: ..." for name in unset) + "}"
    if "NEXT_PUBLIC_API_URL" not in seen and seen and not unset:   # the app's own name, given by the settings
        return [Finding(check, OK, "reads " + ", ".join(f"{name} ({where})" for name, where in seen.items())
                        + ", from qms.frontend.build_env")]
    if "NEXT_PUBLIC_API_URL" not in seen:
        return [Finding(check, WARN, f"reads {listing or 'no NEXT_PUBLIC_* variable'}, not NEXT_PUBLIC_API_URL",
                        API_URL_FIX + (f"; or {set_them}" if unset else ""))]
    if unset:
        return [Finding(check, WARN, f"reads {listing}, which no setting gives the build", set_them)]
    return [Finding(check, OK, f"reads NEXT_PUBLIC_API_URL ({seen['NEXT_PUBLIC_API_URL']})"
                               + (f"; {', '.join(sorted(set(seen) - {'NEXT_PUBLIC_API_URL'}))} from qms.frontend."
                                  "build_env" if len(seen) > 1 else ""))]


def doubled_prefix_findings(sources: dict, layout: Layout) -> list[Finding]:
    """Code that adds the API prefix to NEXT_PUBLIC_API_URL itself wants the bare origin there: with the default
    (https://<domain>/api) every call would go to /api/api/."""
    prefix = layout.api_prefix.rstrip("/")
    if layout.api_url and not layout.api_url.rstrip("/").endswith(prefix):
        return []   # the settings already give the origin
    appended = re.compile(r"NEXT_PUBLIC_API_URL[^;\n]{0,12}?" + re.escape(prefix) + r"/")
    hits = [f"{label}:{line_of(text, m.start())}" for label, text in sorted(sources.items())
            for m in appended.finditer(text)]
    if not hits:
        return []
    origin = f"https://{layout.domains[0]}" if layout.domains else "https://<your domain>"
    return [Finding("frontend: API prefix added twice", FAIL,
                    f"{', '.join(hits[:3])}: the code adds {prefix}/ to NEXT_PUBLIC_API_URL, which is "
                    f"{layout.api_url or 'https://<domain>' + prefix} by default: calls would go to {prefix}{prefix}/",
                    f"set qms.frontend.api_url: {origin} (the origin; your code adds {prefix}/)")]


# -- the Python project ----------------------------------------------------------------------------------------
def toml_table(text: str, name: str) -> Optional[str]:
    """The body of the table [name], blank lines in place of the rest so that line numbers hold; None if absent."""
    lines, inside, found = text.splitlines(), False, False
    body = []
    for line in lines:
        header = re.match(r"\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$", line)
        if header:
            inside = header[1] == name and not line.lstrip().startswith("[[")
            found = found or inside
        body.append(line if inside and not header else "")
    return "\n".join(body) if found else None


def toml_string(body: str, key: str) -> Optional[str]:
    found = re.search(rf"^\s*{re.escape(key)}\s*=\s*(['\"])(.*?)\1", body, re.M)
    return found[2] if found else None


def toml_strings(body: str, key: str) -> Optional[list]:
    """The strings of the array `key = [...]`, each as (text, line); None when there is no such key."""
    start = re.search(rf"^\s*{re.escape(key)}\s*=\s*\[", body, re.M)
    if not start:
        return None
    found, i = [], start.end()
    while i < len(body) and body[i] != "]":
        if body[i] == "#":
            i = body.find("\n", i) % (len(body) + 1)   # to the line's end (or past the text)
        elif body[i] in "\"'":
            end = i + 1
            while end < len(body) and body[end] != body[i]:
                end += 2 if body[i] == '"' and body[end] == "\\" else 1
            found.append((body[i + 1:end], line_of(body, i)))
            i = end + 1
        else:
            i += 1
    return found


def requirement_name(spec: str) -> str:
    name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    return re.sub(r"[-_.]+", "-", name[1]).lower() if name else ""


def requirements(label: str, read: Callable[[str], Optional[str]], seen: frozenset = frozenset()) -> list:
    """(name, file:line) of each requirement in a requirements file and the files it includes with -r."""
    text = read(label)
    if text is None or label in seen:
        return []
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*", "", line).strip()
        include = re.match(r"(?:-r|--requirement)[\s=]+(\S+)", line)
        if include:
            found += requirements(join(posixpath.dirname(label), include[1]), read, seen | {label})
        elif line and not line.startswith("-"):
            found.append((requirement_name(line), f"{label}:{number}"))
    return found


def python_project_findings(app: Path, layout: Layout) -> list[Finding]:
    folder = layout.python_project or layout.backend
    has = {name for name in ("pyproject.toml", "requirements.txt", "uv.lock") if (app / folder / name).is_file()}
    check = "backend: Python project"
    if not has & {"pyproject.toml", "requirements.txt"}:
        root = [name for name in ("pyproject.toml", "requirements.txt") if (app / name).is_file()]
        if root and folder != "." and not layout.python_project:
            return [Finding(check, FAIL, f"none in {folder}/; the app dir has {' and '.join(root)}",
                            "set qms.backend.python_project: . (deps installs the dependencies there)")]
        return [Finding(check, FAIL, f"no pyproject.toml or requirements.txt in {folder}/ (qms.backend.python_project) "
                                     "or the app dir", f"in {folder}/: uv init --bare, then uv add django uvicorn")]

    def read(label: str) -> Optional[str]:
        path = app / label
        return read_text(path) if path.is_file() else None
    pyproject = read(join(folder, "pyproject.toml")) if "pyproject.toml" in has else None
    return project_rows(folder, pyproject, requirements(join(folder, "requirements.txt"), read), "uv.lock" in has)


def project_rows(folder: str, pyproject: Optional[str], required: list, locked: bool) -> list[Finding]:
    """From pyproject.toml's text (None: requirements.txt only), the requirements files' (name, where) and whether
    uv.lock is there. deps installs as backend_plan.sync_command says: the lock, else pyproject, else requirements."""
    check = "backend: Python project"
    if pyproject is None:
        where = next((w for name, w in required if name == "uvicorn"), None)
        return [Finding(check, OK, f"{folder}/requirements.txt (deps: uv pip install -r requirements.txt)"),
                Finding("backend: uvicorn", OK, where) if where else
                Finding("backend: uvicorn", FAIL, f"not in {folder}/requirements.txt (the service runs uvicorn)",
                        f"add the line  uvicorn>=0.30  to {folder}/requirements.txt")]
    label = join(folder, "pyproject.toml")
    project = toml_table(pyproject, "project")
    if project is None:
        return [Finding(check, FAIL, f"{label} has no [project] table (uv reads the dependencies from it)",
                        f"add to {label} a [project] table: name, requires-python and dependencies (those of "
                        "[tool.poetry.dependencies], with uvicorn), then `uv lock` and commit uv.lock")]
    rows = [Finding(check, OK, f"{label} + uv.lock (deps: uv sync --locked --no-dev)") if locked else
            Finding(check, WARN, f"{label} without uv.lock: each deploy resolves the versions anew",
                    f"uv lock in {folder}/, then commit uv.lock (deps then installs exactly it)")]
    deps = toml_strings(project, "dependencies") or []
    uvicorn = next((f"{label}:{line}: {spec}" for spec, line in deps if requirement_name(spec) == "uvicorn"), None)
    rows.append(Finding("backend: uvicorn", OK, uvicorn) if uvicorn else
                Finding("backend: uvicorn", FAIL, f"not in [project] dependencies of {label} (the service runs "
                                                  "uvicorn)", f"add uvicorn to your dependencies: uv add uvicorn "
                                                              f"(in {folder}/)"))
    spec = toml_string(project, "requires-python")
    check = "backend: requires-python"
    if not spec:
        rows.append(Finding(check, OK, f"{label}: not set (any Python)"))
        return rows
    excluded = [f"{version} ({who})" for version, who in SERVER_PYTHONS if python_satisfies(version, spec) is False]
    if excluded:
        rows.append(Finding(check, WARN, f"{label}: {spec} excludes {' and '.join(excluded)}",
                            'widen it to the server\'s Python, e.g. requires-python = ">=3.11", then uv lock (deps '
                            "refuses a server Python outside it)"))
    else:
        rows.append(Finding(check, OK, f"{label}: {spec}"))
    return rows


# -- Django: manage.py, settings, ASGI -------------------------------------------------------------------------
SETTINGS_DEFAULT = re.compile(r"""DJANGO_SETTINGS_MODULE['"]\s*,\s*['"]([\w.]+)['"]""")


def module_reader(app: Path, backend: str) -> Reader:
    """Modules as Python finds them from backend.dir, the working directory of uvicorn and manage.py."""
    cache: dict = {}

    def read(module: str) -> Optional[tuple]:
        if module not in cache:
            base = app / backend / Path(*module.split("."))
            path = next((p for p in (base.parent / f"{base.name}.py", base / "__init__.py") if p.is_file()), None)
            cache[module] = (path.relative_to(app).as_posix(), read_text(path)) if path else None
        return cache[module]
    return read


def backend_findings(app: Path, layout: Layout) -> list[Finding]:
    backend = app / layout.backend
    if not backend.is_dir():
        return [Finding("backend", FAIL, f"no {layout.backend}/ in {app} (qms.backend.dir)", where_is_manage(app))]
    project = python_project_findings(app, layout)
    read = module_reader(app, layout.backend)
    asgi = asgi_finding(app, layout, read)
    manage = backend / "manage.py"
    if not manage.is_file():
        return [Finding("backend: Django project", FAIL, f"no {layout.backend}/manage.py (qms.backend.dir)",
                        where_is_manage(app))] + project + [asgi]
    manage_label = manage.relative_to(app).as_posix()
    named = SETTINGS_DEFAULT.search(read_text(manage))
    module = layout.backend_env.get("DJANGO_SETTINGS_MODULE") or (named and named[1])
    if not module:
        return [Finding("backend: Django project", FAIL, f"{manage_label} does not name DJANGO_SETTINGS_MODULE",
                        "set qms.backend.env: {DJANGO_SETTINGS_MODULE: yourproject.settings}")] + project + [asgi]
    parsed = parse_settings(module, read)
    if parsed is None:
        return [Finding("backend: Django project", FAIL, f"{manage_label}: settings {module}, but no such module in "
                                                         f"{layout.backend}/",
                        "fix DJANGO_SETTINGS_MODULE in manage.py, or set it in qms.backend.env")] + project + [asgi]
    rows = [Finding("backend: Django project", OK, f"{manage_label}, settings {module} ({parsed.label})")]
    asgi_read = read(layout.asgi_app.partition(":")[0])
    asgi_module = SETTINGS_DEFAULT.search(asgi_read[1]) if asgi_read else None
    if asgi_module and asgi_module[1] != module and "DJANGO_SETTINGS_MODULE" not in layout.backend_env:
        # one that does not exist is a service that can never start; two that exist may be meant
        missing = read(asgi_module[1]) is None
        rows.append(Finding("backend: settings module", FAIL if missing else WARN,
                            f"{asgi_read[0]} defaults to settings {asgi_module[1]}"
                            + (" (no such module)" if missing else "") + f", {manage_label} to {module}",
                            "make them the same (the service uses asgi.py's, migrate manage.py's), or set "
                            "qms.backend.env: {DJANGO_SETTINGS_MODULE: ...}"))
    rows += project + [asgi]
    if parsed.error:
        return rows + [Finding("settings", FAIL, parsed.error, "fix the syntax there")]
    urlconf = parsed.constant("ROOT_URLCONF") or f"{module.rpartition('.')[0] or module}.urls"
    return rows + settings_findings(parsed, layout) + url_findings(urlconf, read, layout)


def where_is_manage(app: Path) -> str:
    found = next((p for p in walk(app) if p.name == "manage.py" and len(p.relative_to(app).parts) <= 3), None)
    if found:
        return (f"set qms.backend.dir: {found.parent.relative_to(app).as_posix()} (the folder with manage.py), or "
                "qms.app_dir if the app is elsewhere")
    return "set qms.app_dir to your app's checkout and qms.backend.dir to the folder with manage.py inside it"


def asgi_finding(app: Path, layout: Layout, read: Reader) -> Finding:
    check, (module, _, name) = "backend: ASGI app", layout.asgi_app.partition(":")
    found = read(module)
    if found is None:
        candidates = sorted(p.parent.relative_to(app / layout.backend).as_posix().replace("/", ".") + ".asgi"
                            for p in walk(app / layout.backend) if p.name == "asgi.py")
        return Finding(check, FAIL, f"no module {module} in {layout.backend}/ for qms.backend.asgi_app "
                                    f"({layout.asgi_app})",
                       f"set qms.backend.asgi_app: {candidates[0]}:application" if candidates else
                       "add asgi.py (django-admin startproject makes one: application = get_asgi_application())")
    label, text = found
    if not re.search(rf"^(?:{name}\s*[:=]|def\s+{name}\b|async\s+def\s+{name}\b|from\s.*\bimport\b.*\b{name}\b)",
                     text, re.M):
        return Finding(check, FAIL, f"{label} defines no {name} (qms.backend.asgi_app)",
                       f"add  {name} = get_asgi_application()  (from django.core.asgi import get_asgi_application)")
    return Finding(check, OK, f"{label}: {name} (qms.backend.asgi_app)")


@dataclass(frozen=True)
class Assignment:
    name: str
    value: ast.expr
    where: str       # file:line
    code: str        # the statement, on one line and shortened
    top: bool        # a statement of the module itself, not inside an if/try/with: it always runs
    partial: bool    # DATABASES["default"]["NAME"] = ... or +=: changes part of the value


@dataclass
class ParsedSettings:
    label: str                                          # the settings file, relative to the app dir
    assignments: list = field(default_factory=list)     # in the order Python runs them, star imports inlined
    functions: dict = field(default_factory=dict)       # module-level functions, for env helpers
    unresolved: list = field(default_factory=list)      # star-imported modules that are not the app's own
    error: str = ""

    def of(self, name: str) -> list:
        return [a for a in self.assignments if a.name == name]

    def constant(self, name: str) -> Optional[str]:
        values = [a.value.value for a in self.of(name) if isinstance(a.value, ast.Constant)]
        return values[-1] if values and isinstance(values[-1], str) else None


def parse_settings(module: str, read: Reader) -> Optional[ParsedSettings]:
    found = read(module)
    if found is None:
        return None
    parsed = ParsedSettings(found[0])
    _collect(module, read, parsed, True, set())
    return parsed


def _collect(module: str, read: Reader, parsed: ParsedSettings, top: bool, seen: set) -> None:
    label, text = read(module)
    seen.add(module)
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError) as error:   # ValueError: a null byte (Python 3.11)
        parsed.error = parsed.error or f"{label}:{getattr(error, 'lineno', 1)}: {getattr(error, 'msg', error)}"
        return

    def code(node: ast.stmt, name: str) -> str:   # the statement on one line for the table, a key's value hidden
        one = " ".join((ast.get_source_segment(text, node) or "").split())
        one = re.sub(r"(['\"]).*?\1", r"\1...\1", one) if name == "SECRET_KEY" else one
        return one if len(one) <= 70 else one[:69] + "…"

    package = module if label.endswith("__init__.py") else module.rpartition(".")[0]

    def visit(statements: list, top: bool) -> None:
        for node in statements:
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for name, partial in _target_names(target):
                        parsed.assignments.append(Assignment(
                            name, node.value, f"{label}:{node.lineno}", code(node, name), top,
                            partial or isinstance(node, ast.AugAssign)))
            elif isinstance(node, ast.FunctionDef) and top:
                parsed.functions[node.name] = node
            elif isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names):
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]) if node.level else ""
                target = ".".join(filter(None, [base, node.module]))
                if read(target) is None:
                    parsed.unresolved.append(target)
                elif target not in seen:
                    _collect(target, read, parsed, top, seen)
            else:   # if/try/with bodies run or not, depending: what they set is a fallback or a branch
                for body in _branches(node):
                    visit(body, False)

    visit(tree.body, top)


def _branches(node: ast.stmt) -> list:
    """The statement lists inside an if/try/with/for (a def or class body does not run with the module)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return []
    lists = [getattr(node, attr, None) for attr in ("body", "orelse", "finalbody")]
    return [body for body in lists if isinstance(body, list)] + [h.body for h in getattr(node, "handlers", [])]


def _target_names(target: ast.expr) -> list:
    if isinstance(target, ast.Name):
        return [(target.id, False)]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [pair for element in target.elts for pair in _target_names(element)]
    while isinstance(target, (ast.Subscript, ast.Attribute)):
        target = target.value
    return [(target.id, True)] if isinstance(target, ast.Name) else []


def _is_environ(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" or isinstance(node, ast.Name) and \
        node.id == "environ"


class EnvReads:
    """Which environment variables an expression reads: os.environ/os.getenv, django-environ's env(), decouple's
    config(), dj_database_url, or the module's own helpers and names that read them."""

    def __init__(self, parsed: ParsedSettings):
        self.helpers: dict = {}   # function -> the variables it reads by name ({} : the caller names them)
        self.names: dict = {}     # module-level name -> the variables its value read
        changed = True
        while changed:   # helpers and names build on each other
            changed = False
            for name, function in parsed.functions.items():
                if name not in self.helpers and self.of(function) is not None:
                    self.helpers[name] = self.of(function)
                    changed = True
            for a in parsed.assignments:
                if a.name not in self.names and self.of(a.value) is not None:
                    self.names[a.name] = self.of(a.value)
                    changed = True

    def of(self, node: ast.AST) -> Optional[set]:
        found, names = False, set()
        for n in ast.walk(node):
            called = self._call(n) if isinstance(n, ast.Call) else None
            if isinstance(n, ast.Attribute) and n.attr == "environ":
                found = True
            if isinstance(n, ast.Subscript) and _is_environ(n.value):
                found, names = True, names | _literal(n.slice)
            elif called is not None:
                found, names = True, names | called
            elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in self.names:
                found, names = True, names | self.names[n.id]
        return names if found else None

    def _call(self, call: ast.Call) -> Optional[set]:
        func, first = call.func, _literal(call.args[0]) if call.args else set()
        if isinstance(func, ast.Attribute):
            base = func.value.id if isinstance(func.value, ast.Name) else None
            if func.attr in ("get", "setdefault", "pop") and _is_environ(func.value) or func.attr == "getenv":
                return first
            if base == "env":   # django-environ: env.bool("DEBUG"); env.db() reads DATABASE_URL
                return first or ({"DATABASE_URL"} if func.attr in ("db", "db_url") else set())
            if base == "dj_database_url" and func.attr == "config":
                return {k.value.value for k in call.keywords if k.arg == "env" and isinstance(k.value, ast.Constant)} \
                    or {"DATABASE_URL"}
            if base == "decouple" and func.attr == "config":
                return first
        elif isinstance(func, ast.Name):
            if func.id in ("getenv", "env", "config"):
                return first
            if func.id in self.helpers:
                return first or self.helpers[func.id]
        return None


def _literal(node: ast.AST) -> set:
    return {node.value} if isinstance(node, ast.Constant) and isinstance(node.value, str) else set()


SETTINGS = {   # setting -> its line in checks.READS_ENV (what doctor shows too), where the server's .env value comes
    # from, and the result and why when nothing assigns it
    "SECRET_KEY": ("SECRET_KEY", "SECRET_KEY from the secrets file, qms.secrets_file",
                   FAIL, "Django does not start without it"),
    "DEBUG": ("DEBUG", "always 0 on the server", OK, "Django's default, False, is what production wants"),
    "ALLOWED_HOSTS": ("ALLOWED_HOSTS", "qms.domains, 127.0.0.1 and localhost",
                      FAIL, "with DEBUG off Django answers 400 to every request"),
    "CORS_ALLOWED_ORIGINS": ("CORS_ALLOWED_ORIGINS", "https:// and each of qms.domains",
                             WARN, "fine while the site calls the API on its own domain (qms.domains)"),
    "CSRF_TRUSTED_ORIGINS": ("CSRF_TRUSTED_ORIGINS", "https:// and each of qms.domains",
                             WARN, "the admin's login over HTTPS behind nginx may be refused (CSRF 403)"),
    "DATABASES": ("DATABASE", "DATABASE_PATH, qms.backend.database inside qms.backend.dir", FAIL,
                  "Django has no database"),
    "STATIC_ROOT": ("STATIC_ROOT", "qms.backend.static_dir inside qms.backend.dir", FAIL,
                    "collectstatic refuses to run"),
}


def settings_findings(parsed: ParsedSettings, layout: Layout) -> list[Finding]:
    """Does each setting the server's .env carries read it? A literal is one the .env cannot change."""
    reads = EnvReads(parsed)
    known = set(TOOL_ENV) | set(layout.backend_env)
    rows = [_setting_row(name, parsed, reads, known, layout.domains) for name in SETTINGS]
    for name in ("CORS_ALLOW_ALL_ORIGINS", "CORS_ORIGIN_ALLOW_ALL"):
        a = _effective(parsed.of(name), reads)
        if a and isinstance(a.value, ast.Constant) and a.value.value is True:
            rows.append(Finding(f"settings: {name}", FAIL if a.top else WARN,
                                f"{a.where}: {a.code}" + ("" if a.top else " (inside a condition)"),
                                "remove it: the .env's CORS_ALLOWED_ORIGINS lets in exactly https:// and each of "
                                "qms.domains"))
    return rows + _insecure_keys(parsed)


def _effective(records: list, reads: EnvReads) -> Optional[Assignment]:
    """The assignment that decides on the server: the module's last unconditional one, unless a branch after it
    reads the environment (the .env then overrides it); with none, a branch that reads the environment (the other
    branches are fallbacks), else the first."""
    whole = [a for a in records if not a.partial]
    top = [a for a in whole if a.top]
    after = whole[whole.index(top[-1]) + 1:] if top else whole
    return next((a for a in after if reads.of(a.value) is not None), top[-1] if top else whole[0] if whole else None)


def _setting_row(name: str, parsed: ParsedSettings, reads: EnvReads, known: set, domains: tuple) -> Finding:
    check, records = f"settings: {name}", parsed.of(name)
    key, source, result, why = SETTINGS[name]   # result and why: when nothing assigns it
    line = READS_ENV[key]
    effective = _effective(records, reads)
    if effective is None:
        if parsed.unresolved and result == FAIL:
            result, why = WARN, f"{why}, unless {', '.join(parsed.unresolved)} (not read) sets it"
        return Finding(check, result, f"not set in {parsed.label}: {why}",
                       "" if result == OK else f"add: {line}  (the .env's value: {source})")
    later = records[records.index(effective) + 1:]
    found = [reads.of(a.value) for a in [effective, *(a for a in later if a.partial)]]
    found = [names for names in found if names is not None]
    if not found and name in ("CORS_ALLOWED_ORIGINS", "CSRF_TRUSTED_ORIGINS"):
        # origins written in the code work while they list the site's domains (the guide's QMS does this): a
        # warning, as doctor gives; a domain missing from them is what breaks the browser's calls or logins
        listed = {n.value for n in ast.walk(effective.value) if isinstance(n, ast.Constant)}
        missing = [f"https://{d}" for d in domains if f"https://{d}" not in listed]
        return Finding(check, FAIL if missing else WARN,
                       f"{effective.where}: {effective.code}: " + (f"lacks {', '.join(missing)}" if missing else
                       "set in the code: the .env's value is not used, so a change of qms.domains will not reach it"),
                       f"write: {line}  (the .env's value: {source})")
    if not found:
        safe = name == "DEBUG" and isinstance(effective.value, ast.Constant) and effective.value.value is False
        return Finding(check, WARN if safe else FAIL,
                       f"{effective.where}: {effective.code}: a literal the server's .env cannot change",
                       f"write: {line}  (the .env's value: {source})")
    names = set().union(*found)
    if names and not names & known:
        other = "" if name == "SECRET_KEY" else "; or add " + " or ".join(sorted(names)) + " to qms.backend.env"
        return Finding(check, FAIL, f"{effective.where}: reads {', '.join(sorted(names))}, which the server's .env "
                                    "does not set", f"write: {line}  (the .env's value: {source}){other}")
    return Finding(check, OK, f"{effective.where}: reads {', '.join(sorted(names & known)) or 'the environment'}")


def _insecure_keys(parsed: ParsedSettings) -> list[Finding]:
    rows, new_key = [], 'python -c "import secrets; print(secrets.token_urlsafe(50))"'
    for a in parsed.assignments:
        if any(isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.startswith("django-insecure-")
               for n in ast.walk(a.value)):
            if a.top:
                rows.append(Finding("settings: committed key", FAIL, f"{a.where}: a django-insecure- key in git: "
                                                                      "anyone who reads the repository has it",
                                    f'write: SECRET_KEY = os.environ["SECRET_KEY"]; a new key for the secrets file '
                                    f"(qms.secrets_file): {new_key}"))
            else:
                rows.append(Finding("settings: committed key", WARN, f"{a.where}: a django-insecure- key in git, "
                                                                      "inside a condition (a development fallback?)",
                                    "make sure the condition is false on the server (the .env sets SECRET_KEY and "
                                    "DEBUG=0), or remove it"))
    return rows


# -- URLs: the API prefix, the health endpoint, the admin ------------------------------------------------------
@dataclass(frozen=True)
class Route:
    path: str    # the whole route from the root, such as api/health/
    where: str   # file:line
    kind: str    # view, include, admin, or opaque: an include this check cannot read (a router, another package)


def _func_name(func: ast.expr) -> str:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _path_calls(node: ast.AST) -> Iterator[ast.Call]:
    """path()/re_path()/url() calls with a literal route, outermost only (include([...]) holds its own)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Call) and _func_name(child.func) in ("path", "re_path", "url") and child.args \
                and _literal(child.args[0]):
            yield child
        else:
            yield from _path_calls(child)


def url_routes(module: str, read: Reader, prefix: str = "", seen: frozenset = frozenset()) -> list[Route]:
    found = read(module)
    if found is None or module in seen:
        return []
    label, text = found
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError) as error:   # ValueError: a null byte (Python 3.11)
        return [Route(prefix, f"{label}:{getattr(error, 'lineno', 1)}", "opaque")]
    return [r for call in _path_calls(tree) for r in _route(call, label, prefix, read, seen | {module})]


def _route(call: ast.Call, label: str, prefix: str, read: Reader, seen: frozenset) -> list[Route]:
    route = call.args[0].value
    if _func_name(call.func) != "path":   # a regex: its literal text is what matters here
        route = re.sub(r"^\^|\$$|\\Z$", "", route)
    route, where = prefix + route, f"{label}:{call.lineno}"
    target = call.args[1] if len(call.args) > 1 else None
    if isinstance(target, ast.Call) and _func_name(target.func) == "include" and target.args:
        inner = target.args[0]
        inner = inner.elts[0] if isinstance(inner, ast.Tuple) and inner.elts else inner
        if _literal(inner) and read(inner.value):
            return [Route(route, where, "include"), *url_routes(inner.value, read, route, seen)]
        if isinstance(inner, ast.List):
            return [Route(route, where, "include"),
                    *(r for inner_call in _path_calls(inner) for r in _route(inner_call, label, route, read, seen))]
        return [Route(route, where, "opaque")]
    if isinstance(target, ast.Attribute) and target.attr == "urls" and isinstance(target.value, ast.Attribute) \
            and target.value.attr == "site":
        return [Route(route, where, "admin")]
    return [Route(route, where, "view")]


HEALTH_VIEW = ("from django.http import JsonResponse\n"
               "def health(request):\n"
               '    return JsonResponse({"status": "ok"})')


def url_findings(urlconf: str, read: Reader, layout: Layout) -> list[Finding]:
    root = read(urlconf)
    if root is None:
        return [Finding("urls", FAIL, f"ROOT_URLCONF {urlconf}: no such module in {layout.backend}/",
                        "set ROOT_URLCONF in the settings to your urls module")]
    return route_findings(url_routes(urlconf, read), root[0], layout)


def route_findings(routes: list, root: str, layout: Layout) -> list[Finding]:
    api = layout.api_prefix.strip("/") + "/"
    health = posixpath.join(layout.api_prefix, layout.health_path).lstrip("/")
    admin = layout.admin_prefix.strip("/") + "/"
    opaque = [r for r in routes if r.kind == "opaque"]
    views = [r for r in routes if r.kind == "view"]
    rows = []
    under = next((r for r in routes if r.path.startswith(api)), None)
    unreadable = next((r for r in opaque if api.startswith(r.path)), None)
    if under:
        rows.append(Finding("urls: API prefix", OK, f"{under.where}: /{under.path} (qms.backend.api_prefix "
                                                    f"{layout.api_prefix})"))
    elif unreadable:
        rows.append(Finding("urls: API prefix", WARN, f"{unreadable.where}: /{unreadable.path} includes routes this "
                                                      f"check cannot read; nothing else under /{api}",
                            f"make sure the API answers under qms.backend.api_prefix ({layout.api_prefix})"))
    else:
        tops = sorted({r.path.split("/")[0] + "/" for r in routes if r.kind != "admin" and r.path.split("/")[0]})
        rows.append(Finding("urls: API prefix", FAIL, f"{root}: nothing under /{api} (qms.backend.api_prefix); the "
                                                      f"top-level paths: {', '.join('/' + t for t in tops) or 'none'}",
                            (f"set qms.backend.api_prefix: /{tops[0]}, or " if tops else "")
                            + f'mount the API there: path("{api}", include("yourapp.urls")) (nginx sends only '
                              "qms.backend.api_prefix and qms.backend.admin_prefix to Django)"))
    exact = next((r for r in views if r.path == health), None)
    near = next((r for r in views if r.path.rstrip("/") == health.rstrip("/")), None)
    hidden = next((r for r in opaque if health.startswith(r.path)), None)
    if exact:
        rows.append(Finding("urls: health", OK, f"{exact.where}: /{health} (qms.smoke.health_path)"))
    elif near and near.path.startswith(api):
        rows.append(Finding("urls: health", FAIL, f"{near.where}: answers /{near.path}, smoke asks for /{health}",
                            f"set qms.smoke.health_path: {near.path[len(api):]}"))
    elif hidden:
        rows.append(Finding("urls: health", WARN, f"{hidden.where}: /{hidden.path} includes routes this check cannot "
                                                  f"read; smoke asks for /{health} (qms.smoke.health_path)",
                            f"make sure GET /{health} answers 200 without a login"))
    else:
        # an endpoint named like one, under the API prefix: most apps that have a health check call it so
        likely = next((r for r in views if r.path.startswith(api) and re.search(r"health|ping|alive|ready|status",
                                                                                   r.path[len(api):])), None)
        rows.append(Finding("urls: health", FAIL, f"nothing answers /{health}: smoke and restart wait for it "
                                                  "(qms.backend.api_prefix + qms.smoke.health_path)"
                            + (f"; {likely.where} answers /{likely.path}" if likely else ""),
                            f"set qms.smoke.health_path: {likely.path[len(api):]} (if it answers 200 without a "
                            "login)" if likely else
                            f"set qms.smoke.health_path to a path under the API prefix that answers 200 without a "
                            f"login, or add a view:\n{HEALTH_VIEW}\nand in {root}: path(\"{health}\", health)"))
    admins = [r for r in routes if r.kind == "admin"]
    if any(r.path == admin for r in admins):
        rows.append(Finding("urls: admin", OK, f"{admins[0].where}: /{admin} (qms.backend.admin_prefix)"))
    elif admins:
        rows.append(Finding("urls: admin", FAIL, f"{admins[0].where}: the admin is at /{admins[0].path}, "
                                                 f"qms.backend.admin_prefix is {layout.admin_prefix}",
                            f"set qms.backend.admin_prefix: /{admins[0].path} (nginx sends it to Django; smoke "
                            "fetches it)"))
    elif opaque:
        rows.append(Finding("urls: admin", WARN, f"no admin.site.urls among the routes this check can read; smoke "
                                                 f"fetches {layout.admin_prefix} (qms.backend.admin_prefix)",
                            f"make sure {layout.admin_prefix} answers"))
    else:
        rows.append(Finding("urls: admin", FAIL, f"{root}: no admin.site.urls; smoke fetches {layout.admin_prefix} "
                                                 "(qms.backend.admin_prefix) after every deploy",
                            f'add to {root}: path("{admin}", admin.site.urls)'))
    return rows


# -- generated files in git ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Generated:
    what: str
    owns: Callable[[str], Optional[str]]   # a tracked path -> what to untrack (its folder, or itself), or None
    ignore: tuple                          # the .gitignore lines
    sample: str                            # a path .gitignore must ignore


def _folder_named(name: str) -> Callable[[str], Optional[str]]:
    def owns(path: str) -> Optional[str]:
        parts = path.split("/")
        return "/".join(parts[:parts.index(name) + 1]) if name in parts[:-1] else None
    return owns


def _folder(folder: str) -> Callable[[str], Optional[str]]:
    return lambda path: folder if path.startswith(folder + "/") else None


def generated(layout: Layout) -> list[Generated]:
    static, out = join(layout.backend, layout.static_dir), join(layout.frontend, layout.out)
    database = join(layout.backend, layout.database)
    pycache = _folder_named("__pycache__")
    return [
        Generated("__pycache__, *.pyc", lambda p: pycache(p) or (p if p.endswith(".pyc") else None),
                  ("__pycache__/", "*.pyc"), join(layout.backend, "__pycache__/settings.cpython-312.pyc")),
        Generated("static files (qms.backend.static_dir)", _folder(static), (f"/{static}/",),
                  f"{static}/admin/css/base.css"),
        Generated("SQLite database (qms.backend.database)",
                  lambda p: p if p.endswith(".sqlite3") or p == database or p.startswith(database + "-") else None,
                  ("*.sqlite3",) + (() if database.endswith(".sqlite3") else (f"/{database}",)), database),
        Generated("node_modules", _folder_named("node_modules"), ("node_modules/",),
                  join(layout.frontend, "node_modules/next/package.json")),
        Generated(".next", _folder_named(".next"), (".next/",), join(layout.frontend, ".next/BUILD_ID")),
        Generated("the export (qms.frontend.out)", _folder(out), (f"/{out}/",), f"{out}/index.html"),
        Generated(".venv", _folder_named(".venv"), (".venv/",),
                  join(layout.python_project or layout.backend, ".venv/bin/python")),
    ]


def tracked_findings(tracked: list, ignored: set, kinds: list) -> list[Finding]:
    """From `git ls-files` (paths relative to the app dir) and which kinds' samples `git check-ignore` ignores."""
    rows = []
    for kind in kinds:
        roots = sorted({kind.owns(path) for path in tracked} - {None})
        lines = "" if kind.sample in ignored else ", ".join(kind.ignore)
        if roots:
            count = sum(kind.owns(path) is not None for path in tracked)
            rows.append(Finding(f"git: {kind.what}", FAIL,
                                f"git tracks {count} file(s): {', '.join(roots[:3])}{' ...' if len(roots) > 3 else ''}",
                                f"git rm -r --cached -- {' '.join(shlex.quote(r) for r in roots)}"
                                + (f"; add to .gitignore: {lines}" if lines else "")))
        elif lines:
            rows.append(Finding(f"git: {kind.what}", WARN, f".gitignore does not ignore {kind.sample}",
                                f"add to .gitignore: {lines}"))
    return rows or [Finding("git: generated files", OK, "none tracked, and .gitignore ignores them: "
                                                        + ", ".join(kind.what.split(" (")[0] for kind in kinds))]


def app_findings(app: Path, layout: Layout) -> list[Finding]:
    """Every check that reads files; the task adds git's."""
    return frontend_findings(app, layout) + backend_findings(app, layout)
