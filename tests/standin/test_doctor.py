"""doctor on a stand-in set up by `setup`: all ok; then each of the guide's failures made on purpose, one at a time:
doctor fails that check, names it and gives the fix, and running the fix makes it ok again."""
import json
import shlex

import pytest

from tests.conftest import fab
from tests.export_fixture import make_export
from tests.standin.conftest import remove_standin, set_up_example_app

pytestmark = pytest.mark.standin

SITE = "/etc/nginx/sites-available/qms"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    s = set_up_example_app("qmsdoctor", tmp_path_factory.mktemp("doctor"))
    yield s
    remove_standin(s)


def doctor(site, conf=None) -> tuple[int, dict]:
    result = fab("-f", conf or site.conf, "doctor", "--json", timeout=300)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, {c["check"]: c for c in json.loads(result.stdout)["checks"]}


def fails_then_fixed(site, check: str, saw: str, fix: str, *fixes) -> None:
    code, found = doctor(site)
    assert code == 1, found
    assert found[check]["result"] == "fail" and saw in found[check]["saw"] and fix in found[check]["fix"], found[check]
    for args in fixes:
        done = site.fab(*args, timeout=600)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    code, found = doctor(site)
    assert found[check]["result"] == "ok", found[check]
    assert code == 0, [c for c in found.values() if c["result"] == "fail"]


def test_a_healthy_deploy_is_all_ok(site):
    result = site.fab("doctor")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "all 39 checks ok" in result.stdout
    code, found = doctor(site)
    assert code == 0 and {c["result"] for c in found.values()} <= {"ok", "warn"}
    # the OS and the versions, as the stand-in's own files and programs tell them
    pretty = next(line.split("=", 1)[1].strip('"') for line in (site.root / "etc/os-release").read_text().splitlines()
                  if line.startswith("PRETTY_NAME="))
    nginx = site.ssh("/usr/sbin/nginx -v 2>&1").stdout.strip().rpartition("/")[2]
    software = found["server software"]["saw"]
    assert software.startswith(f"{pretty}: nginx {nginx}, python3 3.") and "missing" not in software, software
    assert found["port 8000"]["result"] == "ok" and found["CORS preflight"]["result"] == "ok"
    # the example app reads every setting from the .env, and a stranger gets nothing
    for check in ("app DEBUG", "app SECRET_KEY", "app ALLOWED_HOSTS", "app CORS_ALLOWED_ORIGINS",
                  "app CSRF_TRUSTED_ORIGINS", "app STATIC_ROOT", "app DATABASE", "foreign Host header",
                  "foreign Origin", "404 page"):
        assert found[check]["result"] == "ok", found[check]


def test_a_750_home_directory(site):
    site.ssh("chmod 750 /home/ubuntu")
    fails_then_fixed(site, "nginx can read the site", "www-data cannot enter /home/ubuntu", "fab fix-perms",
                     ("fix-perms",))


def test_limit_req_zone_inside_server(site):
    site.ssh(f"sudo sed -i '0,/^server {{/s//server {{\\n    limit_req_zone $binary_remote_addr zone=x:10m rate=1r\\/s;/' "
             f"{SITE} && grep -c limit_req_zone {SITE}")
    fails_then_fixed(site, "nginx -t", '"limit_req_zone" directive is not allowed here', "fab nginx-reload",
                     ("nginx-reload",))


def test_a_bare_uv_in_exec_start(site):
    site.ssh("sudo sed -i 's|^ExecStart=/home/ubuntu/QMS/backend/.venv/bin/uvicorn|ExecStart=uv run uvicorn|' "
             "/etc/systemd/system/qms-backend.service && sudo systemctl daemon-reload")
    fails_then_fixed(site, "qms-backend ExecStart", "uv is not an executable file (systemd: 203/EXEC)", "fab service",
                     ("service",))


def test_the_domain_missing_from_the_cors_origins(site):
    site.ssh("sudo sed -i 's|^CORS_ALLOWED_ORIGINS=.*|CORS_ALLOWED_ORIGINS=\"https://www.qms.test\"|' "
             "/home/ubuntu/QMS/.env && sudo systemctl restart qms-backend.service")
    code, found = doctor(site)
    assert found["CORS preflight"]["result"] == "fail"
    assert "a CORS preflight from https://qms.test is refused" in found["CORS preflight"]["saw"]
    fails_then_fixed(site, ".env CORS_ALLOWED_ORIGINS", "lacks https://qms.test", "fab env, then fab restart",
                     ("env",), ("restart",))


def test_debug_on_in_the_running_app(site):
    """What the field report's app shipped with: the .env says DEBUG=0, but DEBUG is on in what runs."""
    site.ssh("sudo sed -i 's|^DEBUG=.*|DEBUG=\"1\"|' /home/ubuntu/QMS/.env && sudo systemctl restart qms-backend.service")
    code, found = doctor(site)
    assert found["404 page"]["result"] == "fail" and "debug page" in found["404 page"]["saw"]
    fails_then_fixed(site, "app DEBUG", "True: error pages show code", 'DEBUG = os.environ.get("DEBUG") == "1"',
                     ("env",), ("restart",))


def test_cors_open_to_all_and_origins_in_the_code(site):
    settings = "/home/ubuntu/QMS/backend/backend/settings.py"
    site.ssh(f"printf '%s\\n' 'CORS_ALLOW_ALL_ORIGINS = True' "
             f"\"CSRF_TRUSTED_ORIGINS = ['https://qms.test', 'https://www.qms.test', 'http://localhost:3000']\" "
             f">> {settings} && sudo systemctl restart qms-backend.service")
    try:
        code, found = doctor(site)
        assert code == 1
        assert found["app CORS"]["result"] == "fail" and "remove CORS_ALLOW_ALL_ORIGINS" in found["app CORS"]["fix"]
        assert found["foreign Origin"]["result"] == "fail"
        csrf = found["app CSRF_TRUSTED_ORIGINS"]
        assert csrf["result"] == "warn" and "set in the code" in csrf["saw"]
        assert csrf["fix"].startswith("backend/settings.py:") and "os.environ.get(\"CSRF_TRUSTED_ORIGINS\"" in csrf["fix"]
    finally:
        site.ssh(f"git -C /home/ubuntu/QMS checkout -- backend/backend/settings.py "
                 "&& sudo systemctl restart qms-backend.service")
    code, found = doctor(site)
    assert found["app CORS_ALLOWED_ORIGINS"]["result"] == "ok" and found["foreign Origin"]["result"] == "ok"


def test_127_0_0_1_baked_into_the_bundle(site):
    make_export(site.app / "frontend" / "out", api_url="http://127.0.0.1:8000/api", marker="local api")
    assert site.fab("upload").returncode == 0      # upload only checks the environment: the build checks the bundle
    fails_then_fixed(site, "API URL in the bundle", "calls http://127.0.0.1:8000/api", "fab build, then fab upload",
                     ("build",), ("upload",))


def test_the_admin_prefix_proxied_over_the_exports_admin_users(site):
    shadowing = site.tmp / "admin-prefix.yaml"
    shadowing.write_text(site.conf.read_text().replace("qms:\n", "qms:\n  backend:\n    admin_prefix: /admin/\n"))
    assert fab("-f", shadowing, "nginx-reload").returncode == 0
    fails_then_fixed(site, "GET /admin/users/", "answers 404", "fab nginx-reload", ("nginx-reload",))


def test_a_missing_certificate(site):
    site.ssh("sudo certbot delete --non-interactive --cert-name qms.test >/dev/null 2>&1")
    fails_then_fixed(site, "certificate", "none", "fab tls", ("tls",))


EXPIRED = """
import datetime, os
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "qms.test")])
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(datetime.datetime(2020, 1, 1))
        .not_valid_after(datetime.datetime(2020, 2, 1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("qms.test"), x509.DNSName("www.qms.test")]), False)
        .sign(key, hashes.SHA256()))
for name in ("cert.pem", "fullchain.pem"):
    with open(os.path.realpath("/etc/letsencrypt/live/qms.test/" + name), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
"""


def test_an_expired_certificate(site):
    """A certificate that ended in 2020 in place of the real one (what a broken renewal leaves)."""
    site.ssh(f"sudo python3 -c {shlex.quote(EXPIRED)}")
    code, found = doctor(site)
    assert code == 1 and found["certificate"]["result"] == "fail"
    assert "expired" in found["certificate"]["saw"] and found["certificate"]["fix"] == "fab tls"
    fixed = site.fab("tls", timeout=600)
    assert fixed.returncode == 0, fixed.stdout[-2000:] + fixed.stderr
    assert doctor(site)[1]["certificate"]["result"] == "ok"
