"""nginx on the stand-in: install with diff, warnings fail and the old file comes back, lint of routes. nginx-reload
needs no release: those tests run on the session's bare stand-in (nginx only, no backend); the redirect loop needs
an export served, so a release, and runs on a stand-in set up by `setup`."""
import subprocess

import pytest

from tests.conftest import assert_one_line_error, fab, run_tool
from tests.export_fixture import make_export, restamp
from tests.standin import conftest as standin_helpers
from tests.standin.conftest import example_app_module, stamp_export
from tests.standin.harness import more_settings, standin_settings

pytestmark = pytest.mark.standin

SITE = "/etc/nginx/sites-available/qms"


site = example_app_module("qmsnginx", "site")


def get(standin, path="/", host="qms.test"):
    result = subprocess.run(["curl", "-s", "--noproxy", "*", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                             f"Host: {host}", f"http://{standin.address}{path}"], capture_output=True, text=True)
    return int(result.stdout or 0)


def test_reload_shows_the_diff_installs_and_then_does_nothing(standin, tmp_path):
    assert standin.fab("prepare").returncode == 0
    first = standin.fab("nginx-reload", "--force")
    assert first.returncode == 0, first.stderr
    assert "nginx serves the new configuration for qms.test" in first.stdout
    conf = tmp_path / "rate.yaml"
    conf.write_text(more_settings(standin.conf.read_text(), "  nginx:\n    rate: 7r/s\n"))
    changed = fab("-f", conf, "nginx-reload")
    assert changed.returncode == 0, changed.stderr
    assert "-limit_req_zone $binary_remote_addr zone=qms_api:10m rate=10r/s;" in changed.stdout
    assert "+limit_req_zone $binary_remote_addr zone=qms_api:10m rate=7r/s;" in changed.stdout
    assert "rate=7r/s" in standin.ssh(f"cat {SITE}").stdout
    same = fab("-f", conf, "nginx-reload")
    assert same.returncode == 0 and "nothing to reload" in same.stdout
    assert get(standin, "/.well-known/acme-challenge/missing") == 404   # the site, not Debian's default


def test_a_warning_from_nginx_t_fails_and_the_previous_site_is_put_back(standin, tmp_path):
    """The guide's section 3: `gzip_types text/html` only warns, and the warning is the failure."""
    assert standin.fab("nginx-reload", "--force").returncode == 0
    before = standin.ssh(f"cat {SITE}").stdout
    standin.ssh("echo 'gzip_types text/html;' | sudo tee /etc/nginx/conf.d/qms-test-warn.conf")
    try:
        conf = tmp_path / "burst.yaml"
        conf.write_text(more_settings(standin.conf.read_text(), "  nginx:\n    burst: 33\n"))
        result = fab("-f", conf, "nginx-reload")
        assert_one_line_error(result, "nginx -t rejected the new site", 'duplicate MIME type "text/html"',
                              "the previous file is back")
        assert standin.ssh(f"cat {SITE}").stdout == before
    finally:
        standin.ssh("sudo rm -f /etc/nginx/conf.d/qms-test-warn.conf")
    assert get(standin, "/.well-known/acme-challenge/missing") == 404


def test_lint_finds_a_proxied_prefix_that_shadows_a_page(tmp_path):
    """The guide's section 8: Django admin at /admin/ swallowed the Next.js page /admin/users/."""
    app = tmp_path / "app"
    make_export(app / "frontend" / "out")
    conf = tmp_path / "standin.yaml"
    conf.write_text(standin_settings("standin", app_dir=app, extra="  backend:\n    admin_prefix: /admin/\n"))
    for tool in ("fab", "inv"):
        result = run_tool(tool, "-f", conf, "nginx-lint")
        assert result.returncode == 1, result.stdout
        assert "/admin/" in result.stdout and "admin/users.html" in result.stdout
    good = conf.read_text().replace("admin_prefix: /admin/", "admin_prefix: /django-admin/")
    conf.write_text(good)
    result = run_tool("inv", "-f", conf, "nginx-lint")
    assert result.returncode == 0 and "nginx-lint: ok" in result.stdout


def test_a_redirect_loop_is_caught_with_its_chain(site):
    """Rules that bounce /admin/users/ and /admin/users to each other; without them the page answers, in the
    layout Next 16 exports (admin/users.html beside a folder admin/users/ with no index.html, which nginx used to
    answer with 403)."""
    out = site.app / "frontend" / "out"
    stamp_export(site, "loop")
    (out / "admin" / "users").mkdir(exist_ok=True)
    (out / "admin" / "users" / "__next.admin.users.txt").write_text("the page's RSC payload\n")
    restamp(out)
    shipped = site.fab("upload")
    assert shipped.returncode == 0, shipped.stdout[-2000:] + shipped.stderr
    looping = site.tmp / "loop.yaml"
    looping.write_text(more_settings(site.conf.read_text(), (
        "  nginx:\n    server_extra: 'location = /admin/users/ { return 301 /admin/users; } "
        "location = /admin/users { return 301 /admin/users/; }'\n")))
    result = fab("-f", looping, "nginx-reload")
    assert_one_line_error(result, "smoke check failed: /admin/users/: redirect loop",
                          "https://qms.test/admin/users/ (301) -> https://qms.test/admin/users (301) -> "
                          "https://qms.test/admin/users/ (301)")
    fixed = site.fab("nginx-reload")
    assert fixed.returncode == 0, fixed.stderr
    assert "smoke: 4 of 4 pages answer" in fixed.stdout
    for path in ("/admin/users", "/admin/users/"):
        code, body = standin_helpers.get(site, path)
        assert code == 200 and "QMS frontend loop" in body, (path, code)


def test_a_site_broken_on_purpose_is_rejected_and_the_old_one_keeps_serving(standin, tmp_path):
    """A directive nginx does not know passes the local lint; the server's nginx -t catches it."""
    assert standin.fab("nginx-reload", "--force").returncode == 0
    before = standin.ssh(f"cat {SITE}").stdout
    conf = tmp_path / "broken.yaml"
    conf.write_text(more_settings(standin.conf.read_text(), "  nginx:\n    server_extra: 'bogus_directive on;'\n"))
    result = fab("-f", conf, "nginx-reload")
    assert_one_line_error(result, "nginx -t rejected the new site", 'unknown directive "bogus_directive"')
    assert standin.ssh(f"cat {SITE}").stdout == before
    assert standin.ssh("sudo nginx -t 2>&1").returncode == 0
    assert get(standin, "/.well-known/acme-challenge/missing") == 404
