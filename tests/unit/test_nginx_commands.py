"""nginx's and the certificate's remote questions, parsed from recorded output (no network)."""
import shlex
from datetime import datetime, timezone
from types import SimpleNamespace

from tasks.core import checks
from tasks.core import nginx_commands as cmd

TEST_OK = ("nginx: the configuration file /etc/nginx/nginx.conf syntax is ok\n"
           "nginx: configuration file /etc/nginx/nginx.conf test is successful\n")


def settings(domains=("qms.example.com",), acme_server=""):
    return SimpleNamespace(domains=list(domains), tls=SimpleNamespace(acme_server=acme_server),
                           nginx=SimpleNamespace(acme_root="/var/www/acme"))


def test_version_from_nginx_v():
    assert cmd.parse_version("nginx version: nginx/1.22.1\n") == (1, 22, 1)
    assert cmd.parse_version("nginx version: nginx/1.26.3 (Debian)\n") == (1, 26, 3)
    assert cmd.parse_version("sudo: nginx: command not found") is None


def test_nginx_t_warnings_fail_too():
    assert cmd.parse_test(TEST_OK, failed=False) is None
    warned = 'nginx: [warn] duplicate MIME type "text/html" in /etc/nginx/sites-enabled/qms:31\n' + TEST_OK
    assert cmd.parse_test(warned, failed=False).startswith('duplicate MIME type "text/html"')
    emerg = ('nginx: [emerg] "limit_req_zone" directive is not allowed here in /etc/nginx/sites-enabled/qms:12\n'
             "nginx: configuration file /etc/nginx/nginx.conf test failed\n")
    assert cmd.parse_test(emerg, failed=True).startswith('"limit_req_zone" directive is not allowed here')
    assert cmd.parse_test("", failed=True) == "failed without output"
    assert cmd.parse_test("sudo: a password is required\n", failed=True) == "sudo: a password is required"


def test_doctor_row_from_the_same_parser():
    assert checks.nginx_test_finding(None).result == checks.OK
    row = checks.nginx_test_finding(cmd.parse_test("nginx: [emerg] unknown directive \"x\" in /etc/a:1\n", True))
    assert row.result == checks.FAIL and row.saw.startswith('unknown directive "x"') and "nginx-reload" in row.fix


def test_enabled_link_and_workers():
    available, enabled = cmd.site_paths("qms")
    assert (available, enabled) == ("/etc/nginx/sites-available/qms", "/etc/nginx/sites-enabled/qms")
    assert cmd.parse_link("/etc/nginx/sites-available/qms\n", available)
    assert not cmd.parse_link("/etc/nginx/sites-available/default\n", available)
    assert not cmd.parse_link("", available)   # no link: readlink prints nothing
    assert cmd.parse_workers("812\n813\n") == {"812", "813"}
    assert cmd.parse_workers("") == frozenset()
    assert cmd.reload_command(running=False) == "systemctl start nginx"
    assert cmd.reload_command(running=True) == "systemctl reload nginx"
    assert cmd.parse_error_tail("a\nb\n2026/12/02 [emerg] bind() failed\n") == "2026/12/02 [emerg] bind() failed"
    assert cmd.parse_error_tail("") == "no log"


def test_challenge_commands_quote_what_they_are_given():
    weird = "qms.example.com;touch /tmp/x"
    for through_dns in (False, True):
        words = shlex.split(cmd.fetch_challenge_command(weird, "t0k", through_dns))
        assert ";touch" not in " ".join(w for w in words if not w.startswith(("http://", "Host:")))
    assert cmd.parse_challenge("t0k\n", "t0k") and not cmd.parse_challenge("<html>404</html>", "t0k")
    assert shlex.split(cmd.remove_challenge_command("/var/www/acme/", "t0k")) == \
        ["rm", "-f", "--", "/var/www/acme/.well-known/acme-challenge/t0k"]


def test_certificate_facts_from_openssl():
    recorded = ("notAfter=Jan  1 04:31:26 2027 GMT\nX509v3 Subject Alternative Name: \n"
                "    DNS:qms.test, DNS:www.qms.test\n")
    names, not_after = cmd.parse_certificate_facts(recorded)
    assert names == {"qms.test", "www.qms.test"}
    assert not_after == datetime(2027, 1, 1, 4, 31, 26, tzinfo=timezone.utc)
    missing = ("Could not open file or uri for loading certificate from /etc/letsencrypt/live/x/fullchain.pem\n"
               "Unable to load certificate\n")
    assert cmd.parse_certificate_facts(missing) is None


def test_certbot_commands():
    s = settings(domains=["a.test", "b.test"], acme_server="https://pebble:14000/dir")
    words = shlex.split(cmd.certonly_command(s, "ops@a.test"))
    assert words[:4] == ["certbot", "certonly", "--webroot", "-w"]
    assert "--nginx" not in words and words.count("-d") == 2 and words[-2:] == ["--server", "https://pebble:14000/dir"]
    assert "--server" not in cmd.renew_dry_run_command(settings())
    assert cmd.certificate_command(settings(domains=[])) == "false"
    assert cmd.parse_last_line("Saving debug log\n\nAn unexpected error occurred:\nConnection refused\n\n") == \
        "Connection refused"
