"""TLS on a stand-in of its own, against a real ACME server (pebble): certonly --webroot, the template's TLS block,
renewal through the deploy hook, tls --check. The stand-in is set up by `setup` without an email for Let's Encrypt
(so it serves plain HTTP and gets no certificate), then the email is set, as a user would before running tls."""
import subprocess
import time

import pytest

from tests.conftest import assert_one_line_error
from tests.standin.conftest import deploy_example_app, remove_standin
from tests.standin.harness import more_settings

pytestmark = pytest.mark.standin
PAGE = "QMS frontend backend"   # the heading of the made-up export deploy_example_app ships


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    s = deploy_example_app("qmstls", tmp_path_factory.mktemp("tls"), settings="  tls:\n    email: null\n")
    assert "no certificate: set qms.domains and qms.tls.email, then run tls" in s.setup_output
    s.conf.write_text(more_settings(s.conf.read_text(), "  tls:\n    email: admin@qms.test\n"))
    yield s
    remove_standin(s)


def curl(box, url, *extra):
    result = subprocess.run(["curl", "-s", "--noproxy", "*", "--cacert", str(box.dir / "acme-root.pem"),
                             "--resolve", f"qms.test:443:{box.address}", "--resolve", f"qms.test:80:{box.address}",
                             "--resolve", f"www.qms.test:443:{box.address}", "-w", "\n%{http_code} %{redirect_url}",
                             *extra, url], capture_output=True, text=True, timeout=30)
    body, _, status = result.stdout.rpartition("\n")
    code, _, redirect = status.partition(" ")
    return int(code or 0), redirect, body, result.returncode


def served_serial(box):
    out = subprocess.run(f"echo | openssl s_client -connect {box.address}:443 -servername qms.test 2>/dev/null "
                         "| openssl x509 -noout -serial", shell=True, capture_output=True, text=True).stdout
    return out.strip()


def test_before_a_certificate_the_site_is_plain_http(box):
    code, redirect, body, _ = curl(box, "http://qms.test/")
    assert code == 200 and redirect == "" and PAGE in body
    assert_one_line_error(box.fab("tls", "--check"), "no certificate for qms.test: run tls")


def test_tls_issues_with_webroot_and_the_template_serves_https(box):
    result = box.fab("tls")
    assert result.returncode == 0, result.stderr
    assert "certbot certonly --webroot" in result.stdout and "is served with the certificate" in result.stdout
    for name in ("qms.test", "www.qms.test"):
        code, _, body, rc = curl(box, f"https://{name}/")
        assert rc == 0 and code == 200 and PAGE in body   # a certificate curl trusts, for both names
    code, redirect, _, _ = curl(box, "http://qms.test/login")
    assert code == 301 and redirect == "https://qms.test/login"
    code, _, _, _ = curl(box, "http://qms.test/.well-known/acme-challenge/none")
    assert code == 404   # ACME stays on plain HTTP for renewals
    hsts = subprocess.run(["curl", "-sI", "--noproxy", "*", "--cacert", str(box.dir / "acme-root.pem"), "--resolve",
                           f"qms.test:443:{box.address}", "https://qms.test/"], capture_output=True, text=True).stdout
    assert "strict-transport-security" in hsts.lower()
    # certbot left the site alone: it is exactly what the template renders
    again = box.fab("nginx-reload")
    assert again.returncode == 0 and "nothing to reload" in again.stdout
    # and re-installing the template keeps HTTPS (the guide's section 11 cannot happen)
    forced = box.fab("nginx-reload", "--force")
    assert forced.returncode == 0, forced.stderr
    code, _, body, rc = curl(box, "https://qms.test/admin/users/")
    assert rc == 0 and code == 200 and PAGE in body
    assert "managed by Certbot" not in box.ssh("cat /etc/nginx/sites-available/qms").stdout


def test_a_second_tls_run_keeps_the_certificate(box):
    serial = served_serial(box)
    result = box.fab("tls")
    assert result.returncode == 0, result.stderr
    assert "ok           certificate for qms.test, www.qms.test" in result.stdout
    assert served_serial(box) == serial


def test_check_reports_expiry_and_renew_dry_run(box):
    result = box.fab("tls", "--check")
    assert result.returncode == 0, result.stderr
    assert "days)" in result.stdout and "certbot renew --dry-run: ok" in result.stdout


def test_a_renewal_is_served_through_the_deploy_hook(box):
    before = served_serial(box)
    box.ssh("sudo certbot renew --force-renewal --no-random-sleep-on-renew --server https://standin-host:14000/dir")
    deadline = time.monotonic() + 10   # a reload is asynchronous: old workers answer for a moment
    while (after := served_serial(box)) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert after and after != before
    assert box.fab("tls", "--check").returncode == 0
