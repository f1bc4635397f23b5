"""doctor on a stand-in set up by `setup`: all ok; then each of the guide's failures made on purpose, one at a time:
doctor fails that check, names it and gives the fix, and running the fix makes it ok again. The server holds whole-app
releases: the served one is ~/QMS/current, its backend the instance qms-backend@<release id> (on a unix socket, so
doctor checks only nginx's ports), its settings the shared .env in ~/QMS/shared."""
import json
import shlex

import pytest

from tests.conftest import fab
from tests.standin.conftest import example_app_module, served, set_up_example_app, stamp_export
from tests.standin.harness import more_settings

pytestmark = pytest.mark.standin

SITE = "/etc/nginx/sites-available/qms"
ENV = "/home/ubuntu/QMS/shared/.env"


site = example_app_module("qmsdoctor", "site", make=set_up_example_app)


def doctor(site, conf=None) -> tuple[int, dict]:
    result = fab("-f", conf or site.conf, "doctor", "--json", timeout=300)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, {c["check"]: c for c in json.loads(result.stdout)["checks"]}


def restart_backend(site) -> str:
    return f"sudo systemctl restart qms-backend@{served(site)}.service"


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
    assert "all 43 checks ok" in result.stdout
    code, found = doctor(site)
    assert code == 0 and {c["result"] for c in found.values()} <= {"ok", "warn"}
    # the backend listens on its release's socket, not a port: doctor checks nginx's ports only
    assert not any(check.startswith("port ") and check.split()[1] not in ("80", "443") for check in found), found
    assert found["port 80"]["result"] == "ok" and found["port 443"]["result"] == "ok"
    assert found["CORS preflight"]["result"] == "ok"
    unit = f"qms-backend@{served(site)}"
    assert found[f"{unit} service"]["result"] == "ok"
    # MemoryMax is written; whether it acts is the kernel's: cgroup v2 in the stand-in enforces it, v1 does not
    v2 = site.ssh("test -e /sys/fs/cgroup/cgroup.controllers", check=False).returncode == 0
    assert found[f"{unit} memory limit"]["saw"].startswith(
        "MemoryMax 400 MB, enforced" if v2 else "MemoryMax 400 MB, not enforced by this kernel"), found
    assert found[f"{unit} exposure"]["result"] == "ok" and "OK (systemd-analyze security)" in \
        found[f"{unit} exposure"]["saw"]
    assert found["ufw"]["saw"] == "not installed" and found["port 443 from here"]["result"] == "ok"
    assert found["certificate renewal timer"]["saw"] == "certbot.timer (apt) active"
    # the OS and the versions, as the stand-in's own files and programs tell them
    pretty = next(line.split("=", 1)[1].strip('"') for line in (site.root / "etc/os-release").read_text().splitlines()
                  if line.startswith("PRETTY_NAME="))
    nginx = site.ssh("/usr/sbin/nginx -v 2>&1").stdout.strip().rpartition("/")[2]
    software = found["server software"]["saw"]
    assert software.startswith(f"{pretty}: nginx {nginx}, python3 3.") and "missing" not in software, software
    # the example app reads every setting from the .env, and a stranger gets nothing
    for check in ("app DEBUG", "app SECRET_KEY", "app ALLOWED_HOSTS", "app CORS_ALLOWED_ORIGINS",
                  "app CSRF_TRUSTED_ORIGINS", "app STATIC_ROOT", "app DATABASE", "foreign Host header",
                  "foreign Origin", "404 page"):
        assert found[check]["result"] == "ok", found[check]


def test_a_750_home_directory(site):
    site.ssh("chmod 750 /home/ubuntu")
    fails_then_fixed(site, "nginx can read the site", "www-data cannot enter /home/ubuntu (mode 750: Ubuntu 21.04+ "
                     "makes home directories 750)", "fab fix-perms (adds o+x", ("fix-perms",))
    assert site.ssh("stat -c %a /home/ubuntu").stdout.strip() == "751"


def test_ufw_active_with_ssh_only_then_a_cloud_firewall(site):
    """ufw enabled the usual way (OpenSSH allowed, nothing else), then a firewall outside the server: packets from
    this machine to 80/443 are dropped, as Lightsail's firewall does, while the server still answers itself."""
    site.ssh("sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q ufw >/dev/null "
             "&& sudo ufw allow OpenSSH && sudo ufw --force enable")
    drop = "INPUT -p tcp -m multiport --dports 80,443 ! -i lo -j DROP"
    try:
        code, found = doctor(site)
        assert code == 1
        assert found["ufw"]["result"] == "fail" and found["ufw"]["fix"] == "sudo ufw allow 80,443/tcp"
        assert found["ufw"]["saw"] == "active, blocks 80 (default deny incoming), 443 (default deny incoming)"
        assert found["port 80 from here"]["fix"] == "ufw blocks it (see ufw)"
        assert found["GET /"]["result"] == "ok"   # on the server itself, the site answers
        site.ssh("sudo ufw allow 80,443/tcp")
        code, found = doctor(site)
        assert code == 0 and found["ufw"]["result"] == "ok" and found["port 443 from here"]["result"] == "ok"

        site.ssh(f"sudo ufw --force reset && sudo iptables -I {drop}")
        code, found = doctor(site)
        assert code == 1 and found["ufw"]["saw"] == "inactive"
        cloud = found["port 443 from here"]
        assert cloud["result"] == "fail" and f"{site.address}:443 gives no answer in 3 s" in cloud["saw"]
        assert "Lightsail: the instance's Networking tab" in cloud["fix"]
        site.ssh(f"sudo iptables -D {drop}")
        code, found = doctor(site)
        assert code == 0 and found["port 443 from here"]["result"] == "ok"
    finally:
        site.ssh(f"sudo iptables -D {drop} 2>/dev/null; sudo ufw --force reset; sudo ufw disable", check=False)


def test_certbot_from_the_snap_both_or_neither(site):
    """Ubuntu's certbot from snap renews by snap.certbot.renew.timer: a unit of that name stands in for it."""
    snap = "/etc/systemd/system/snap.certbot.renew"
    site.ssh(f"printf '[Service]\\nType=oneshot\\nExecStart=/bin/true\\n' | sudo tee {snap}.service >/dev/null && "
             f"printf '[Timer]\\nOnCalendar=daily\\n[Install]\\nWantedBy=timers.target\\n' | sudo tee {snap}.timer "
             ">/dev/null && sudo systemctl daemon-reload && sudo systemctl enable --now snap.certbot.renew.timer")
    try:
        timer = doctor(site)[1]["certificate renewal timer"]
        assert timer["result"] == "warn" and timer["saw"] == ("two certbots renew the same certificates: certbot.timer "
                                                              "(apt) active, snap.certbot.renew.timer (snap) active")
        site.ssh("sudo systemctl mask --now certbot.timer")   # as if apt's certbot were not there
        timer = doctor(site)[1]["certificate renewal timer"]
        assert timer["result"] == "ok" and timer["saw"] == "snap.certbot.renew.timer (snap) active"
        site.ssh(f"sudo systemctl disable --now snap.certbot.renew.timer && sudo rm {snap}.timer {snap}.service "
                 "&& sudo systemctl daemon-reload")
        timer = doctor(site)[1]["certificate renewal timer"]
        assert timer["result"] == "warn" and "nothing renews the certificate" in timer["saw"]
    finally:
        site.ssh(f"sudo rm -f {snap}.timer {snap}.service; sudo systemctl unmask certbot.timer; "
                 "sudo systemctl daemon-reload; sudo systemctl enable --now certbot.timer", check=False)
    assert doctor(site)[1]["certificate renewal timer"]["result"] == "ok"


def test_a_unit_without_the_hardening_is_rated_exposed(site):
    unit = "/etc/systemd/system/qms-backend@.service"   # the template: every release's instance runs under it
    site.ssh(f"sudo sed -i '/^CapabilityBoundingSet=/,/^MemoryDenyWriteExecute=/d' {unit} "
             f"&& ! grep -q '^CapabilityBoundingSet=' {unit} && sudo systemctl daemon-reload")
    check = f"qms-backend@{served(site)} exposure"
    code, found = doctor(site)
    exposure = found[check]
    assert exposure["result"] == "warn" and float(exposure["saw"].split()[0]) > 2.0, exposure
    assert exposure["fix"].startswith("fab service")
    assert site.fab("service").returncode == 0
    assert doctor(site)[1][check]["result"] == "ok"


def test_limit_req_zone_inside_server(site):
    site.ssh(f"sudo sed -i '0,/^server {{/s//server {{\\n    limit_req_zone $binary_remote_addr zone=x:10m rate=1r\\/s;/' "
             f"{SITE} && grep -c limit_req_zone {SITE}")
    fails_then_fixed(site, "nginx -t", '"limit_req_zone" directive is not allowed here', "fab nginx-reload",
                     ("nginx-reload",))


def test_a_bare_uv_in_exec_start(site):
    site.ssh("sudo sed -i 's|^ExecStart=/home/ubuntu/QMS/releases/%i/venv/bin/uvicorn|ExecStart=uv run uvicorn|' "
             "/etc/systemd/system/qms-backend@.service && grep -q '^ExecStart=uv run' "
             "/etc/systemd/system/qms-backend@.service && sudo systemctl daemon-reload")
    fails_then_fixed(site, f"qms-backend@{served(site)} ExecStart", "uv is not an executable file (systemd: 203/EXEC)",
                     "fab service", ("service",))


def test_the_domain_missing_from_the_cors_origins(site):
    site.ssh(f"sudo sed -i 's|^CORS_ALLOWED_ORIGINS=.*|CORS_ALLOWED_ORIGINS=\"https://www.qms.test\"|' {ENV} "
             f"&& {restart_backend(site)}")
    code, found = doctor(site)
    assert found["CORS preflight"]["result"] == "fail"
    assert "a CORS preflight from https://qms.test is refused" in found["CORS preflight"]["saw"]
    fails_then_fixed(site, ".env CORS_ALLOWED_ORIGINS", "lacks https://qms.test", "fab env, then fab restart",
                     ("env",), ("restart",))


def test_debug_on_in_the_running_app(site):
    """What the field report's app shipped with: the .env says DEBUG=0, but DEBUG is on in what runs."""
    site.ssh(f"sudo sed -i 's|^DEBUG=.*|DEBUG=\"1\"|' {ENV} && {restart_backend(site)}")
    code, found = doctor(site)
    assert found["404 page"]["result"] == "fail" and "debug page" in found["404 page"]["saw"]
    fails_then_fixed(site, "app DEBUG", "True: error pages show code", 'DEBUG = os.environ.get("DEBUG") == "1"',
                     ("env",), ("restart",))


def test_cors_open_to_all_and_origins_in_the_code(site):
    """Edited in the served release's code (what someone fixing it on the server does), put back after."""
    settings = "/home/ubuntu/QMS/current/backend/backend/settings.py"
    site.ssh(f"sudo cp -p {settings} /tmp/settings.py.orig && printf '%s\\n' 'CORS_ALLOW_ALL_ORIGINS = True' "
             f"\"CSRF_TRUSTED_ORIGINS = ['https://qms.test', 'https://www.qms.test', 'http://localhost:3000']\" "
             f"| sudo tee -a {settings} >/dev/null && {restart_backend(site)}")
    try:
        code, found = doctor(site)
        assert code == 1
        assert found["app CORS"]["result"] == "fail" and "remove CORS_ALLOW_ALL_ORIGINS" in found["app CORS"]["fix"]
        assert found["foreign Origin"]["result"] == "fail"
        csrf = found["app CSRF_TRUSTED_ORIGINS"]
        assert csrf["result"] == "warn" and "set in the code" in csrf["saw"]
        assert csrf["fix"].startswith("backend/settings.py:") and "os.environ.get(\"CSRF_TRUSTED_ORIGINS\"" in csrf["fix"]
    finally:
        site.ssh(f"sudo cp -p /tmp/settings.py.orig {settings} && {restart_backend(site)}")
    code, found = doctor(site)
    assert found["app CORS_ALLOWED_ORIGINS"]["result"] == "ok" and found["foreign Origin"]["result"] == "ok"


def test_127_0_0_1_baked_into_the_bundle(site):
    stamp_export(site, "local api", api_url="http://127.0.0.1:8000/api")
    shipped = site.fab("upload")     # upload only checks the environment: the build checks the bundle
    assert shipped.returncode == 0, shipped.stdout[-2000:] + shipped.stderr
    fails_then_fixed(site, "API URL in the bundle", "calls http://127.0.0.1:8000/api", "fab build, then fab upload",
                     ("build",), ("upload",))


def test_the_admin_prefix_proxied_over_the_exports_admin_users(site):
    shadowing = site.tmp / "admin-prefix.yaml"
    shadowing.write_text(more_settings(site.conf.read_text(), "  backend:\n    admin_prefix: /admin/\n"))
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
