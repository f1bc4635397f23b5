"""doctor's checks are data: outputs captured on the stand-in in, findings (result, what was seen, the fix) out."""
from tasks.core import checks
from tasks.core.checks import FAIL, OK, WARN

SS = """\
LISTEN 0      511      0.0.0.0:443  0.0.0.0:* users:(("nginx",pid=460,fd=9),("nginx",pid=36,fd=9))
LISTEN 0      511      0.0.0.0:80   0.0.0.0:* users:(("nginx",pid=460,fd=5),("nginx",pid=36,fd=5))
LISTEN 0      128      0.0.0.0:22   0.0.0.0:* users:(("sshd",pid=35,fd=3))
LISTEN 0      2048   127.0.0.1:8000 0.0.0.0:* users:(("python",pid=938,fd=4),("uvicorn",pid=378,fd=3),("systemd",pid=1,fd=28))
LISTEN 0      511         [::]:80      [::]:* users:(("nginx",pid=460,fd=6))
"""

UNIT_OK = "Result=success\nActiveState=active\nSubState=running\nprogram=/home/ubuntu/QMS/backend/.venv/bin/uvicorn\n" \
          "executable=yes\nsocket=active\nrestarts=0\n"


def by_check(findings):
    return {f.check: f for f in findings}


def test_listeners_name_every_process_on_each_port():
    found = checks.parse_listeners(SS)
    assert found == {443: "nginx", 80: "nginx", 22: "sshd", 8000: "python,systemd,uvicorn"}
    ports = by_check(checks.port_findings(found, 8000, tls_expected=True))
    assert all(f.result == OK for f in ports.values())
    missing = by_check(checks.port_findings({80: "nginx"}, 8000, tls_expected=False))
    assert missing["port 8000"].result == FAIL and missing["port 443"].result == WARN
    assert missing["port 443"].fix == "fab tls"


def test_the_unit_healthy_waiting_on_its_socket_failing_and_the_203_exec_case():
    assert {f.result for f in checks.parse_unit(UNIT_OK, "qms-backend")} == {OK}
    waiting = UNIT_OK.replace("ActiveState=active", "ActiveState=inactive").replace("SubState=running", "SubState=dead")
    assert by_check(checks.parse_unit(waiting, "qms-backend"))["qms-backend service"].result == OK
    flapping = UNIT_OK.replace("restarts=0", "restarts=7")
    assert "7 restart(s) in the last hour" in by_check(checks.parse_unit(flapping, "qms-backend"))[
        "qms-backend service"].saw
    bare_uv = ("Result=exit-code\nActiveState=failed\nSubState=failed\nprogram=uv\nexecutable=no\nsocket=active\n"
               "restarts=5\n")
    found = by_check(checks.parse_unit(bare_uv, "qms-backend"))
    assert found["qms-backend ExecStart"].result == FAIL and "203/EXEC" in found["qms-backend ExecStart"].saw
    assert found["qms-backend ExecStart"].fix.startswith("fab service")
    assert found["qms-backend service"].result == FAIL


def test_nginx_t_warnings_fail_too():
    ok = ("nginx: the configuration file /etc/nginx/nginx.conf syntax is ok\n"
          "nginx: configuration file /etc/nginx/nginx.conf test is successful\n")
    assert checks.parse_nginx_t(ok, failed=False).result == OK
    warned = 'nginx: [warn] duplicate MIME type "text/html" in /etc/nginx/sites-enabled/qms:31\n' + ok
    finding = checks.parse_nginx_t(warned, failed=False)
    assert finding.result == FAIL and finding.saw.startswith('duplicate MIME type "text/html"')
    emerg = ('nginx: [emerg] "limit_req_zone" directive is not allowed here in /etc/nginx/sites-enabled/qms:12\n'
             "nginx: configuration file /etc/nginx/nginx.conf test failed\n")
    assert '"limit_req_zone" directive is not allowed here' in checks.parse_nginx_t(emerg, failed=True).saw


def test_env_mode_keys_and_origins_values_never_shown():
    values = {"SECRET_KEY": "s3cret-value", "ALLOWED_HOSTS": "qms.test", "CORS_ALLOWED_ORIGINS": "https://www.qms.test",
              "CSRF_TRUSTED_ORIGINS": "https://qms.test,https://www.qms.test", "DATABASE_PATH": "/x/db.sqlite3"}
    found = by_check(checks.env_findings("644", values, ["qms.test", "www.qms.test"]))
    assert found[".env mode"].result == FAIL
    assert found[".env CORS_ALLOWED_ORIGINS"].result == FAIL and found[".env CORS_ALLOWED_ORIGINS"].saw == \
        "lacks https://qms.test"
    assert found[".env CSRF_TRUSTED_ORIGINS"].result == OK and found[".env keys"].result == OK
    assert all("s3cret-value" not in f.saw for f in found.values())
    assert checks.env_findings(None, None, [])[0].result == FAIL


def test_the_bundle_check_names_the_file_and_the_address():
    local = {"exists": True, "api_url": "https://qms.test/api", "has_api": False,
             "bad": [["_next/static/chunks/pages/index-ab12.js", "http://127.0.0.1:8000/api"]]}
    finding = checks.bundle_findings(local, "https://qms.test/api")[0]
    assert finding.result == FAIL and finding.saw == "_next/static/chunks/pages/index-ab12.js calls http://127.0.0.1:8000/api"
    good = {"exists": True, "api_url": "https://qms.test/api", "has_api": True, "bad": []}
    assert checks.bundle_findings(good, "https://qms.test/api")[0].result == OK
    assert checks.bundle_findings({"exists": False}, "x")[0].saw == "no frontend is served"


def test_resources_warn_under_15_percent_and_without_swap():
    output = ("qms-standin      264212084 26679860  79711052      26% /\nMemTotal:       1000000 kB\n"
              "MemAvailable:   100000 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n")
    found = by_check(checks.resource_findings(output))
    assert found["disk free"].result == OK and "(30%)" in found["disk free"].saw
    assert found["memory available"].result == WARN and found["swap"].result == WARN


def test_certificate_days_expiry_and_coverage():
    assert checks.certificate_finding(None, False, 30).fix == "fab tls"
    assert checks.certificate_finding(-3, True, 30).saw == "expired 3 days ago"
    assert checks.certificate_finding(10, True, 30).result == WARN
    assert checks.certificate_finding(80, False, 30).result == FAIL
    assert checks.certificate_finding(80, True, 30).result == OK


def test_server_git_state():
    assert checks.git_finding(" M backend/x.py\n", "a" * 40, "a" * 40, "main").result == FAIL
    assert checks.git_finding("", "a" * 40, "b" * 40, "main").saw == "at aaaaaaa, main is at bbbbbbb"
    assert checks.git_finding("", "a" * 40, "a" * 40, "main").result == OK
    assert checks.worst([checks.Finding("x", OK, ""), checks.Finding("y", WARN, "")]) == WARN
