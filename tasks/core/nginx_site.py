"""The nginx site: settings -> rendered file, and the checks it must pass before it goes near a server (GUIDE §3, §8).

Pure planning code: no network, no Fabric. `nginx_test` is the one exception that runs a program, and only a local
one (the real nginx, when installed), on a throwaway copy.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from . import backend_plan as plan
from .errors import UserError
from .settings import Settings
from .templates import render_template

TEMPLATE = "site.conf.j2"
DEFAULT_NGINX_VERSION = (1, 22)   # Debian 12's; the form of the http2 switch depends on it (see the template)


@dataclass(frozen=True)
class Finding:
    line: Optional[int]   # line in the site file, when known
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


# ---------------------------------------------------------------------------------------------------------------
# Rendering

# Characters nginx would read as syntax (quotes, blocks, comments, variables, word breaks) in an unquoted path.
_NGINX_UNSAFE = re.compile(r"""[\s;{}"'$#\\]""")


def site_context(s: Settings, tls: bool, nginx_version: tuple[int, ...] = DEFAULT_NGINX_VERSION) -> dict:
    """The template's variables. TLS needs a domain: the certificate is issued for the first one."""
    domains = list(s.domains)
    if tls:
        s.require("domains", "a TLS site (its certificate is issued for the first domain)")
    paths = {
        "qms.app_root": s.app_root,
        "qms.frontend.dir": s.frontend.dir, "qms.frontend.out": s.frontend.out,
        "qms.backend.dir": s.backend.dir, "qms.backend.static_dir": s.backend.static_dir,
        "qms.nginx.acme_root": s.nginx.acme_root,
    }
    for key, value in paths.items():
        if _NGINX_UNSAFE.search(value):
            raise UserError(f"{s.source}: {key} must not contain spaces, quotes, ';', '{{', '}}', '#', '$' or '\\' "
                            f"(nginx would misread the path), got {value!r}")
    context = {
        "site": s.nginx.site,
        "server_names": " ".join(domains) or "_",
        "tls": tls,
        "nginx_version": tuple(nginx_version),
        "served_root": plan.export_dir(s),
        "static_url": s.backend.static_url,
        "static_root": plan.static_root(s),
        "api_prefix": s.backend.api_prefix,
        "admin_prefix": s.backend.admin_prefix,
        # the served release's socket, through `current`: the switch moves the API with the pages
        "backend": f"unix:{plan.release_dir(s)}/backend.sock:",
        "rate": s.nginx.rate,
        "burst": s.nginx.burst,
        "client_max_body_size": s.nginx.client_max_body_size,
        "acme_root": s.nginx.acme_root,
        "server_extra": s.nginx.server_extra.strip(),
    }
    if tls:
        live = f"/etc/letsencrypt/live/{domains[0]}"
        context.update(ssl_certificate=f"{live}/fullchain.pem", ssl_certificate_key=f"{live}/privkey.pem")
    return context


def render(context: dict) -> str:
    """The template with these variables; a variable it uses and the context lacks is an error, not ''."""
    return render_template("nginx", TEMPLATE, context)


def certificate_path(s: Settings) -> str:
    """Where certbot keeps the first domain's certificate chain ('' without domains)."""
    return f"/etc/letsencrypt/live/{s.domains[0]}/fullchain.pem" if s.domains else ""


def render_site(s: Settings, tls: bool, nginx_version: tuple[int, ...] = DEFAULT_NGINX_VERSION) -> str:
    return render(site_context(s, tls, nginx_version))


# ---------------------------------------------------------------------------------------------------------------
# Parsing: just enough of nginx's own lexer (ngx_conf_file.c) to know which directive sits inside which block.

@dataclass(frozen=True)
class Directive:
    name: str
    args: tuple[str, ...]
    line: int
    block: Optional[tuple["Directive", ...]]   # None for a simple `name args;`


def _tokens(text: str) -> Iterator[tuple[str, int, bool]]:
    """(token, line, quoted). `{`, `}` and `;` are tokens of their own where a token starts; inside a word only
    space, `;` and `{` end it, and a `{` right after `$` is part of a `${name}` variable, as in nginx.
    `#` starts a comment only where a token could start; a backslash makes the next character literal."""
    i, line, n = 0, 1, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
            i += 1
        elif ch.isspace():
            i += 1
        elif ch == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif ch in "{};":
            yield ch, line, False
            i += 1
        elif ch in "\"'":
            start, i, value = line, i + 1, []
            while i < n and text[i] != ch:
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                line += text[i] == "\n"
                value.append(text[i])
                i += 1
            if i >= n:
                raise _ParseError(start, f"the {ch} quote opened here is never closed")
            yield "".join(value), start, True
            i += 1
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] != ";" and (text[i] != "{" or text[i - 1] == "$"):
                i += 1 + (text[i] == "\\")
            yield text[start:i], line, False


class _ParseError(Exception):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


@dataclass
class _Open:
    """A block being read: its directive, and the directives found in it so far."""
    name: str
    args: tuple[str, ...]
    line: int
    children: list[Directive]

    def close(self) -> Directive:
        return Directive(self.name, self.args, self.line, tuple(self.children))


def parse(text: str) -> tuple[list[Directive], list[Finding]]:
    """The directive tree, and the structural errors: unbalanced braces, a missing `;`, an open quote."""
    top: list[Directive] = []
    stack: list[_Open] = []
    words: list[tuple[str, int]] = []
    findings: list[Finding] = []

    def current() -> list[Directive]:
        return stack[-1].children if stack else top

    try:
        for token, line, quoted in _tokens(text):
            if quoted or token not in ("{", "}", ";"):
                words.append((token, line))
            elif token == ";":
                if words:
                    current().append(Directive(words[0][0], tuple(w for w, _ in words[1:]), words[0][1], None))
                else:
                    findings.append(Finding(line, "unexpected ';' with no directive before it"))
                words = []
            elif token == "{":
                if not words:
                    findings.append(Finding(line, "'{' with no directive before it"))
                name, opened = words[0] if words else ("{", line)
                stack.append(_Open(name, tuple(w for w, _ in words[1:]), opened, []))
                words = []
            else:
                if words:
                    findings.append(Finding(words[0][1], f'"{words[0][0]}" is missing its ";" before the "}}"'))
                    words = []
                if stack:
                    block = stack.pop().close()
                    current().append(block)
                else:
                    findings.append(Finding(line, "unexpected '}': no block is open here (unbalanced braces)"))
    except _ParseError as error:
        findings.append(Finding(error.line, str(error)))
    if words:
        findings.append(Finding(words[0][1], f'"{words[0][0]}" is missing its ";" at the end of the file'))
    while stack:   # close what the file left open, so that the checks still see what is inside
        block = stack.pop()
        findings.append(Finding(block.line, f'the "{block.name}" block opened here is never closed '
                                            f'(unbalanced braces)'))
        current().append(block.close())
    return top, findings


# ---------------------------------------------------------------------------------------------------------------
# Lint

# Where a directive may appear ("Context:" in nginx's docs), for the directives a site file uses or gets wrong.
# The top of a sites-enabled file is the http level: /etc/nginx/nginx.conf includes it inside http{}.
# "if in server" / "if in location" are separate contexts, as in nginx's docs. Directives not listed are left to
# nginx -t. An empty set: the directive belongs in nginx.conf, never in a site file.
_ANYWHERE_HTTP = frozenset({"http", "server", "location"})
WHERE: dict[str, frozenset[str]] = {
    # Shared zones, maps, upstreams and caches are declared once for all servers: http level only (GUIDE §3).
    **dict.fromkeys(["limit_req_zone", "limit_conn_zone", "map", "upstream", "proxy_cache_path", "geo"],
                    frozenset({"http"})),
    # A virtual server lives in http{}; inside upstream{}, `server` is a simple directive naming a backend.
    "server": frozenset({"http", "upstream"}),
    "location": frozenset({"server", "location"}),
    **dict.fromkeys(["listen", "server_name"], frozenset({"server"})),
    **dict.fromkeys(["ssl_certificate", "ssl_certificate_key", "http2"], frozenset({"http", "server"})),
    **dict.fromkeys(["limit_req", "limit_conn", "limit_req_status", "gzip_types"], _ANYWHERE_HTTP),
    **dict.fromkeys(["root", "error_page", "add_header", "gzip"], _ANYWHERE_HTTP | {"if in location"}),
    "try_files": frozenset({"server", "location"}),
    "alias": frozenset({"location"}),
    "proxy_pass": frozenset({"location", "if in location", "limit_except"}),
    **dict.fromkeys(["return", "rewrite"], frozenset({"server", "location", "if in server", "if in location"})),
    "if": frozenset({"server", "location"}),
    **dict.fromkeys(["http", "events", "user", "worker_processes", "pid", "load_module"], frozenset()),
}
# Directives that open a block (server only outside upstream{}), and blocks that hold data, not directives.
NEEDS_BLOCK = frozenset({"http", "events", "server", "location", "if", "upstream", "map", "geo", "limit_except"})
DATA_BLOCKS = frozenset({"map", "geo", "types", "split_clients"})


def lint(text: str) -> list[Finding]:
    """Mistakes nginx -t would report (and two it lets pass), found without nginx, with line numbers."""
    tree, findings = parse(text)
    findings += _check_block(tree, "http", {}, "")
    return sorted(findings, key=lambda f: (f.line or 0, f.message))


def _context_text(context: str) -> str:
    if context == "http":
        return "http (the top of a site file)"
    return f"if{{}} in a {context[len('if in '):]}" if context.startswith("if in ") else f"{context}{{}}"


def _check_block(children: tuple[Directive, ...] | list[Directive], context: str,
                 inherited_headers: dict[str, str], label: str) -> list[Finding]:
    findings = []
    header_lines = [d for d in children if d.name == "add_header" and d.args]
    own_headers = {d.args[0].lower(): d.args[0] for d in header_lines}   # header names are case-insensitive
    for d in children:
        allowed = WHERE.get(d.name)
        if allowed is not None and context not in allowed:
            here = "at the top of a site file (http level)" if context == "http" else f"in {_context_text(context)}"
            where = ", ".join(map(_context_text, sorted(allowed))) or "nginx.conf, never in a site file"
            findings.append(Finding(d.line, f'"{d.name}" is not allowed {here}: it belongs in {where}'))
        wants_block = d.name in NEEDS_BLOCK and not (d.name == "server" and context == "upstream")
        if wants_block and d.block is None:
            findings.append(Finding(d.line, f'"{d.name}" needs a {{ ... }} block'))
        elif d.block is not None and allowed is not None and not wants_block:
            findings.append(Finding(d.line, f'"{d.name}" takes no {{ ... }} block'))
        if d.name == "gzip_types" and "text/html" in (a.lower() for a in d.args):
            findings.append(Finding(d.line, 'gzip_types lists text/html, which gzip always compresses: nginx -t warns '
                                            '"duplicate MIME type" (GUIDE §3); remove it'))
        if d.block is not None and d.name not in DATA_BLOCKS:
            inner = f"if in {context}" if d.name == "if" else d.name
            findings += _check_block(d.block, inner, own_headers or inherited_headers, " ".join([d.name, *d.args]))
    # nginx copies add_header into a block only when the block has none of its own: one Cache-Control header in a
    # location silently drops every security header set at server level.
    lost = [name for key, name in inherited_headers.items() if own_headers and key not in own_headers]
    if lost:
        findings.append(Finding(header_lines[0].line, f"{label} has add_header of its own, so nginx drops the ones "
                                                      f"set above it ({', '.join(lost)}): repeat them here"))
    return findings


# ---------------------------------------------------------------------------------------------------------------
# The real nginx -t, locally

def nginx_binary() -> Optional[str]:
    """The local nginx, if any. Debian puts it in /usr/sbin, which is not on a normal user's PATH."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/local/sbin:/usr/sbin:/sbin")


_CERT_LINE = re.compile(r"^(\s*ssl_certificate(_key)?\s+)\S+?(\s*;)", re.MULTILINE)
_LISTEN_LINE = re.compile(r"^(\s*listen\s+)([^\s;]+)", re.MULTILINE)
_TEST_PORT_OFFSET = 20000   # nginx -t binds the listen ports, and only root may bind those below 1024
_LOG_LINE = re.compile(r"\[(emerg|alert|crit|warn)\] (.*?)(?: in (\S+):(\d+))?$")


def nginx_test(text: str) -> list[Finding]:
    """`nginx -t` of the site file with the local nginx, as any user; [] when it passes or nginx is absent.

    The site goes into a throwaway directory beside a minimal nginx.conf that includes it inside http{} (as
    sites-enabled is) and keeps pid, logs and temp paths in that directory, so nothing in /etc or /var is touched.
    The copy under test differs from `text` in two ways, line for line, so line numbers still match: a TLS site's
    Let's Encrypt files exist only on the server, so it names a throwaway self-signed pair instead; and nginx -t
    binds the listen ports, so ports below 1024 move up by 20000 (a port in use is fine in test mode).
    Every [warn] counts (GUIDE §3). Test with the nginx version the text was rendered for: the http2 switch
    differs across 1.25.1. Call nginx_binary() first to tell "passed" from "skipped".
    """
    nginx = nginx_binary()
    if nginx is None:
        return []
    with tempfile.TemporaryDirectory(prefix="qms-nginx-test-") as tmp:
        work = Path(tmp)
        if _CERT_LINE.search(text):
            problem = _throwaway_certificate(work)
            if problem:
                return [Finding(None, problem)]
        site = work / "site.conf"
        site.write_text(_test_copy(text, work))
        (work / "nginx.conf").write_text(_wrapper(work, site))
        try:
            result = subprocess.run([nginx, "-t", "-q", "-p", str(work), "-e", str(work / "error.log"),
                                     "-c", str(work / "nginx.conf")],
                                    capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return [Finding(None, "nginx -t did not finish within 60 s")]
        return _nginx_findings(result.stdout + result.stderr, result.returncode, str(work), str(site))


def _test_copy(text: str, work: Path) -> str:
    text = _CERT_LINE.sub(lambda m: f"{m.group(1)}{work / ('key.pem' if m.group(2) else 'cert.pem')}{m.group(3)}",
                          text)
    return _LISTEN_LINE.sub(lambda m: m.group(1) + _unprivileged(m.group(2)), text)


def _unprivileged(address: str) -> str:
    """`80`, `[::]:443`, `127.0.0.1` (port 80 implied) -> the same address on a port a non-root user may bind."""
    if address.isdigit():
        host, port = "", address
    elif ":" in address and not address.endswith("]"):   # host:port, [v6]:port; unix:/path keeps its non-port
        host, _, port = address.rpartition(":")
        host += ":"
    else:
        host, port = address + ":", "80"
    if not port.isdigit() or int(port) >= 1024:
        return address
    return f"{host}{int(port) + _TEST_PORT_OFFSET}"


def _throwaway_certificate(work: Path) -> Optional[str]:
    if shutil.which("openssl") is None:
        return "openssl is not installed: it is needed to make a throwaway certificate for nginx -t of a TLS site"
    result = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                             "-nodes", "-days", "1", "-subj", "/CN=test",
                             "-keyout", str(work / "key.pem"), "-out", str(work / "cert.pem")],
                            capture_output=True, text=True, timeout=60)
    return None if result.returncode == 0 else f"openssl could not make a test certificate: {result.stderr.strip()}"


def _wrapper(work: Path, site: Path) -> str:
    mime = Path("/etc/nginx/mime.types")
    lines = [
        f"pid {work}/nginx.pid;",
        "events {}",
        "http {",
        f"    include {mime};" if mime.is_file() else "",
        f"    access_log {work}/access.log;",
        *(f"    {kind}_temp_path {work}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
        f"    include {site};",
        "}",
    ]
    return "\n".join(line for line in lines if line) + "\n"


def _nginx_findings(output: str, returncode: int, work: str, site: str) -> list[Finding]:
    findings = []
    for raw in output.splitlines():
        match = _LOG_LINE.search(raw)
        if not match:
            continue
        level, message, path, line = match.groups()
        in_site = path == site
        message = message.replace(work, "<test dir>")
        if path and not in_site:
            message += f" (in {path.replace(work, '<test dir>')}:{line})"
        findings.append(Finding(int(line) if in_site else None, f"nginx -t: [{level}] {message}"))
    if returncode != 0 and not findings:
        findings.append(Finding(None, f"nginx -t failed: {output.strip().replace(work, '<test dir>')}"))
    return findings


# ---------------------------------------------------------------------------------------------------------------
# Routes: Django's prefixes against the pages of the static export (GUIDE §8)

def export_url(path: str) -> str:
    """The URL nginx serves an export file at (try_files $uri $uri.html $uri/): a/index.html -> /a/, a/b.html -> /a/b,
    anything else at its own path."""
    if path == "index.html" or path.endswith("/index.html"):
        return "/" + path[: -len("index.html")]
    return "/" + (path[: -len(".html")] if path.endswith(".html") else path)


def route_collisions(proxied_prefixes: list[str], export_files: list[str]) -> list[Finding]:
    """Each export file a proxied prefix hides from the browser: nginx sends those URLs to Django instead.

    `location ^~ /admin/` takes every URL under /admin/, and with proxy_pass it also answers /admin itself with a
    redirect to /admin/. Next.js's own files (_next/) and a page's RSC payload (the .txt beside its .html) are
    not reported on their own.
    """
    files = {f.replace("\\", "/").lstrip("/").removeprefix("./") for f in export_files}
    findings = []
    for path in sorted(files):
        if path.startswith("_next/") or (path.endswith(".txt") and path[: -len(".txt")] + ".html" in files):
            continue
        url = export_url(path)
        kind = "page" if path.endswith(".html") else "file"
        for prefix in proxied_prefixes:
            if url.startswith(prefix) or url == prefix.rstrip("/"):
                findings.append(Finding(None, f"location {prefix} (proxied to Django) shadows the {kind} {url} "
                                              f"({path}) of the static export: move the Django route to another "
                                              f"prefix (qms.backend.admin_prefix, qms.backend.api_prefix) or rename "
                                              f"the {kind}"))
    return findings
