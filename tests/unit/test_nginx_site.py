"""The nginx site: settings in, rendered text and findings out (GUIDE §3, §8, §11)."""
import pytest
from jinja2 import UndefinedError

from tasks.core.errors import UserError
from tasks.core.nginx_site import (Finding, lint, nginx_binary, nginx_test, parse, render,
                                   render_site, route_collisions, site_context)
from tasks.core.settings import defaults, resolve

DOMAINS = ["qms.example.com", "www.qms.example.com"]
SECURITY_HEADERS = {"x-content-type-options", "x-frame-options", "referrer-policy", "permissions-policy"}
needs_nginx = pytest.mark.skipif(nginx_binary() is None, reason="nginx not installed locally")


def settings(**qms):
    return resolve([], {**defaults(), "domains": DOMAINS, **qms}, "conf/test.yaml")


def servers(text):
    tree, problems = parse(text)
    assert problems == []
    return [d for d in tree if d.name == "server"]


def walk(block):
    for d in block:
        yield d
        if d.block is not None:
            yield from walk(d.block)


def args_of(block, name):
    return [d.args for d in block if d.name == name]


def locations(server):
    return {" ".join(d.args): d for d in walk(server.block) if d.name == "location"}


@pytest.mark.parametrize("tls", [False, True])
def test_default_site_passes_lint(tls):
    assert lint(render_site(settings(), tls)) == []


@needs_nginx
@pytest.mark.parametrize("tls", [False, True])
def test_default_site_passes_the_real_nginx_t(tls):
    assert nginx_test(render_site(settings(), tls)) == []


@needs_nginx
def test_real_nginx_t_reports_warnings_with_the_site_line():
    text = render_site(settings(), False).replace("gzip_types text/plain", "gzip_types text/html text/plain")
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "gzip_types" in row)
    assert nginx_test(text) == [Finding(line, 'nginx -t: [warn] duplicate MIME type "text/html"')]


def test_rate_limit_zone_at_the_top_and_limit_only_in_the_api():
    text = render_site(settings(nginx={**defaults()["nginx"], "rate": "5r/s", "burst": 7}), False)
    tree, _ = parse(text)
    assert args_of(tree, "limit_req_zone") == [("$binary_remote_addr", "zone=qms_api:10m", "rate=5r/s")]
    limited = {" ".join(d.args) for d in walk(tree) if d.name == "location" and args_of(d.block, "limit_req")}
    assert limited == {"^~ /api/"}
    assert args_of(locations(servers(text)[0])["^~ /api/"].block, "limit_req") == [
        ("zone=qms_api", "burst=7", "nodelay")]


@pytest.mark.parametrize("tls", [False, True])
def test_django_prefixes_are_proxied_with_the_prefix_kept(tls):
    site = servers(render_site(settings(app_root="/srv/qms"), tls))[-1]
    for prefix in ("/api/", "/django-admin/"):
        block = locations(site)[f"^~ {prefix}"].block
        # the served release's socket through `current`; no URI part: prefix kept
        assert args_of(block, "proxy_pass") == [("http://unix:/srv/qms/current/backend.sock:",)]
        headers = {a[0]: a[1] for a in args_of(block, "proxy_set_header")}
        assert headers == {"Host": "$host", "X-Real-IP": "$remote_addr",
                           "X-Forwarded-For": "$proxy_add_x_forwarded_for", "X-Forwarded-Proto": "$scheme",
                           "X-Forwarded-Host": "$host"}
        assert args_of(block, "client_max_body_size") == [("10m",)]


def test_static_export_django_static_and_acme_paths():
    text = render_site(settings(app_root="/srv/qms"), False)
    site = servers(text)[0]
    assert args_of(site.block, "root") == [("/srv/qms/current/frontend/out",)]
    assert args_of(site.block, "error_page") == [("404", "/404.html")]
    where = locations(site)
    assert args_of(where["/"].block, "try_files") == [("$uri", "$uri.html", "$uri/index.html", "@trailing_slash")]
    assert args_of(where["@trailing_slash"].block, "rewrite") == [("^(.+)/$", "$1.html", "last")]
    assert args_of(where["^~ /static/"].block, "alias") == [("/srv/qms/current/backend/staticfiles/",)]
    assert args_of(where["^~ /.well-known/acme-challenge/"].block, "root") == [("/var/www/letsencrypt",)]
    assert ("Cache-Control", "public, max-age=31536000, immutable") in args_of(where["^~ /_next/static/"].block,
                                                                               "add_header")
    assert "text/html" not in args_of(site.block, "gzip_types")[0]


def test_tls_site_redirects_http_and_answers_acme_on_port_80():
    http, https = servers(render_site(settings(), True))
    assert args_of(http.block, "listen") == [("80",), ("[::]:80",)]
    where = locations(http)
    assert set(where) == {"^~ /.well-known/acme-challenge/", "/"}
    assert args_of(where["/"].block, "return") == [("301", "https://$host$request_uri")]
    assert args_of(https.block, "listen") == [("443", "ssl", "http2"), ("[::]:443", "ssl", "http2")]
    assert args_of(https.block, "ssl_certificate") == [("/etc/letsencrypt/live/qms.example.com/fullchain.pem",)]
    assert args_of(https.block, "ssl_certificate_key") == [("/etc/letsencrypt/live/qms.example.com/privkey.pem",)]
    assert args_of(https.block, "ssl_protocols") == [("TLSv1.2", "TLSv1.3")]
    assert args_of(https.block, "ssl_prefer_server_ciphers") == [("off",)]
    assert args_of(https.block, "ssl_session_tickets") == [("off",)]
    tree, _ = parse(render_site(settings(), True))
    assert "include" not in {d.name for d in walk(tree)}   # no certbot --nginx options-ssl-nginx.conf (GUIDE §11)


def test_http_only_site_has_no_redirect_and_no_tls():
    text = render_site(settings(), False)
    (site,) = servers(text)
    assert args_of(site.block, "listen") == [("80",), ("[::]:80",)]
    assert not [d for d in walk(site.block) if d.name == "return" and d.args[0].startswith("30")]
    assert "ssl" not in text and "Strict-Transport-Security" not in text


def test_http2_switch_follows_the_nginx_version():
    old = servers(render_site(settings(), True, nginx_version=(1, 22, 1)))[-1]
    new = servers(render_site(settings(), True, nginx_version=(1, 25, 1)))[-1]
    assert args_of(old.block, "listen") == [("443", "ssl", "http2"), ("[::]:443", "ssl", "http2")]
    assert args_of(old.block, "http2") == []
    assert args_of(new.block, "listen") == [("443", "ssl"), ("[::]:443", "ssl")]
    assert args_of(new.block, "http2") == [("on",)]


@pytest.mark.parametrize("tls", [False, True])
def test_security_headers_repeated_wherever_a_block_adds_a_header(tls):
    site = servers(render_site(settings(), tls))[-1]
    expected = SECURITY_HEADERS | ({"strict-transport-security"} if tls else set())

    def names(block):
        return {a[0].lower() for a in args_of(block, "add_header")}

    assert names(site.block) == expected
    adding = [d for d in walk(site.block) if d.block is not None and names(d.block)]
    assert len(adding) >= 2   # /_next/static/ and /
    for block in adding:
        assert expected <= names(block.block), " ".join(block.args)
    for d in walk(site.block):
        if d.name == "add_header" and d.args[0].lower() in expected:
            assert d.args[-1] == "always", d   # error pages need them too
    assert args_of(site.block, "server_tokens") == [("off",)]


def test_site_without_domains_answers_any_name_and_cannot_have_tls():
    s = settings(domains=[])
    assert args_of(servers(render_site(s, False))[0].block, "server_name") == [("_",)]
    with pytest.raises(UserError, match="qms.domains is not set, and a TLS site"):
        site_context(s, True)


def test_a_path_nginx_would_misread_is_refused():
    with pytest.raises(UserError, match="conf/test.yaml: qms.app_root must not contain spaces"):
        site_context(settings(app_root="/home/ubuntu/My QMS"), False)


def test_a_variable_missing_from_the_context_is_an_error():
    context = site_context(settings(), False)
    del context["backend"]
    with pytest.raises(UndefinedError, match="backend"):
        render(context)


# lint: the guide's §3 failures, and the rest of the context table

def test_limit_req_zone_inside_server_is_an_error_on_its_line():
    text = "server {\n    listen 80;\n    limit_req_zone $binary_remote_addr zone=api:10m rate=10r/s;\n}\n"
    assert lint(text) == [Finding(3, '"limit_req_zone" is not allowed in server{}: it belongs in http '
                                     '(the top of a site file)')]


def test_gzip_types_with_text_html_is_an_error():
    (finding,) = lint("server {\n    gzip on;\n    gzip_types text/css text/html;\n}\n")
    assert finding.line == 3 and "text/html" in finding.message and "duplicate MIME type" in finding.message


def test_location_at_the_top_level_is_an_error():
    assert lint("# site\nlocation / {\n    return 404;\n}\n") == [
        Finding(2, '"location" is not allowed at the top of a site file (http level): it belongs in location{}, '
                   'server{}')]


# A directive in the wrong block: lint's context table, each case also an emerg of the real nginx on that line.
WRONG_PLACE = [
    ("server {\n  location / {\n    listen 80;\n  }\n}\n", 3, '"listen" is not allowed in location{}'),
    ("server {\n  proxy_pass http://127.0.0.1:8000;\n}\n", 2, '"proxy_pass" is not allowed in server{}'),
    ("server {\n  if ($x) {\n    proxy_pass http://a;\n  }\n}\n", 3, '"proxy_pass" is not allowed in if{} in a server'),
    ("server {\n  location / {\n    limit_req_zone $a zone=b:1m rate=1r/s;\n  }\n}\n", 3, "limit_req_zone"),
    ("limit_req zone=a;\nserver_name a;\n", 2, '"server_name" is not allowed at the top of a site file'),
    ("server {\n  alias /srv/;\n}\n", 2, '"alias" is not allowed in server{}'),
    ("server {\n  server {\n  }\n}\n", 2, '"server" is not allowed in server{}'),
    ("events {\n}\n", 1, '"events" is not allowed at the top of a site file (http level): it belongs in nginx.conf'),
]


@pytest.mark.parametrize("text, line, fragment", WRONG_PLACE + [
    ("server {\n  location /a;\n}\n", 2, '"location" needs a { ... } block'),
    ("server {\n  listen 80;\n", 1, 'the "server" block opened here is never closed'),
    ("server {\n}\n}\n", 3, "unexpected '}'"),
    ("server {\n  listen 80\n}\n", 2, '"listen" is missing its ";"'),
    ('server {\n  return 200 "open;\n}\n', 2, "quote opened here is never closed"),
    ("server {\n  add_header X-A 1;\n  location / {\n    add_header Cache-Control no-cache;\n  }\n}\n", 4,
     "location / has add_header of its own, so nginx drops the ones set above it (X-A)"),
])
def test_lint_finds(text, line, fragment):
    assert any(f.line == line and fragment in f.message for f in lint(text)), lint(text)


@needs_nginx
@pytest.mark.parametrize("text, line, fragment", WRONG_PLACE)
def test_the_real_nginx_agrees_with_the_context_table(text, line, fragment):
    assert [(f.line, "is not allowed here" in f.message) for f in nginx_test(text)] == [(line, True)]


def test_nginx_test_is_skipped_without_nginx(monkeypatch):
    monkeypatch.setattr("tasks.core.nginx_site.nginx_binary", lambda: None)
    assert nginx_test("server {") == []


def test_lint_reads_nginx_syntax_the_way_nginx_does():
    text = "\n".join([
        "upstream django {",
        "    server 127.0.0.1:8000;          # a backend address here, not a virtual server",
        "}",
        "map $http_upgrade $connection_upgrade {",
        "    default upgrade;",
        "    ''      close;",
        "}",
        "server {",
        "    listen 80;  # a comment with { braces } and ; is ignored",
        "    set $target ${host}x;",
        '    add_header X-Note "a { b } ; c" always;',
        "    location ~ \"^/a{2}$\" {",
        "        if ($request_method = POST) { return 405; }",
        "        proxy_pass http://django;",
        "    }",
        "}",
        "",
    ])
    assert lint(text) == []


# route collisions (GUIDE §8)

def test_the_guides_admin_collision():
    files = ["index.html", "admin/users.html", "admin/users.txt", "admin/users/index.html", "_next/static/x.js",
             "login.html"]
    findings = route_collisions(["/api/", "/admin/"], files)
    assert [f.message for f in findings] == [
        "location /admin/ (proxied to Django) shadows the page /admin/users (admin/users.html) of the static "
        "export: move the Django route to another prefix (qms.backend.admin_prefix, qms.backend.api_prefix) or "
        "rename the page",
        "location /admin/ (proxied to Django) shadows the page /admin/users/ (admin/users/index.html) of the static "
        "export: move the Django route to another prefix (qms.backend.admin_prefix, qms.backend.api_prefix) or "
        "rename the page",
    ]


def test_default_prefixes_do_not_collide_with_an_admin_page():
    assert route_collisions(["/api/", "/django-admin/"], ["admin/users.html", "admin/index.html", "404.html"]) == []


def test_a_page_at_the_prefix_itself_is_shadowed_too():
    # proxy_pass in `location /api/` answers /api with a redirect to /api/
    (finding,) = route_collisions(["/api/"], ["api.html", "apis.html", "_next/static/api/x.js"])
    assert "the page /api (api.html)" in finding.message
