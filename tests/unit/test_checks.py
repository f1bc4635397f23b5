"""doctor's checks are data: outputs captured on the stand-in in, findings (result, what was seen, the fix) out."""
from pathlib import Path

from tasks.core import checks
from tasks.core.checks import FAIL, OK, WARN

SS = """\
LISTEN 0      511      0.0.0.0:443  0.0.0.0:* users:(("nginx",pid=460,fd=9),("nginx",pid=36,fd=9))
LISTEN 0      511      0.0.0.0:80   0.0.0.0:* users:(("nginx",pid=460,fd=5),("nginx",pid=36,fd=5))
LISTEN 0      128      0.0.0.0:22   0.0.0.0:* users:(("sshd",pid=35,fd=3))
LISTEN 0      2048   127.0.0.1:8000 0.0.0.0:* users:(("python",pid=938,fd=4),("uvicorn",pid=378,fd=3),("systemd",pid=1,fd=28))
LISTEN 0      511         [::]:80      [::]:* users:(("nginx",pid=460,fd=6))
"""

# recorded on the stand-in (systemd 252 on cgroup v1: no per-unit memory accounting, so no MemoryCurrent)
UNIT_OK = "Result=success\nActiveState=active\nSubState=running\nMemoryCurrent=[not set]\nMemoryMax=419430400\n" \
          "program=/home/ubuntu/QMS/backend/.venv/bin/uvicorn\nexecutable=yes\nsocket=active\nrestarts=0\n"


def test_listeners_name_every_process_on_each_port():
    found = checks.parse_listeners(SS)
    assert found == {443: "nginx", 80: "nginx", 22: "sshd", 8000: "python,systemd,uvicorn"}
    ports = by_check(checks.port_findings(found, tls_expected=True))
    assert all(f.result == OK for f in ports.values()) and set(ports) == {"port 80", "port 443"}
    missing = by_check(checks.port_findings({80: "nginx"}, tls_expected=False))
    assert missing["port 80"].result == OK and missing["port 443"].result == WARN
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


def test_the_memory_limit_and_whether_the_kernel_enforces_it():
    unenforced = by_check(checks.parse_unit(UNIT_OK, "qms-backend"))["qms-backend memory limit"]
    assert unenforced.result == OK and unenforced.saw.startswith("MemoryMax 400 MB, not enforced by this kernel")
    v2 = UNIT_OK.replace("MemoryCurrent=[not set]", "MemoryCurrent=104857600")
    assert by_check(checks.parse_unit(v2, "qms-backend"))["qms-backend memory limit"].saw == \
        "MemoryMax 400 MB, enforced; it uses 100 MB"
    unset = by_check(checks.parse_unit(UNIT_OK.replace("MemoryMax=419430400", "MemoryMax=infinity"), "qms-backend"))
    assert unset["qms-backend memory limit"].result == WARN


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
             "bad": [["_next/static/chunks/pages/index-ab12.js", "http://127.0.0.1:8000/api", 'n="http://127.0.0.1:8000/api"']]}
    finding = checks.bundle_findings(local, "https://qms.test/api", [])[0]
    assert finding.result == FAIL and finding.saw == "_next/static/chunks/pages/index-ab12.js calls http://127.0.0.1:8000/api"
    good = {"exists": True, "api_url": "https://qms.test/api", "has_api": True, "bad": []}
    assert checks.bundle_findings(good, "https://qms.test/api", [])[0].result == OK
    assert checks.bundle_findings({"exists": False}, "x", [])[0].saw == "no frontend is served"


def test_a_hit_the_team_allowed_does_not_fail_doctor_either():
    served = {"exists": True, "api_url": "https://qms.test/api", "has_api": True,
              "bad": [["_next/static/chunks/1.js", "http://localhost:9000/metrics", 'probe("http://localhost:9000/metrics")']]}
    assert checks.bundle_findings(served, "https://qms.test/api", ["localhost:9000/metrics"])[0].result == OK
    assert checks.bundle_findings(served, "https://qms.test/api", ["other"])[0].result == FAIL


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
    assert checks.git_finding(["backend/x.py"], "a" * 40, "a" * 40, "main").result == FAIL
    assert checks.git_finding([], "a" * 40, "b" * 40, "main").saw == "at aaaaaaa, main is at bbbbbbb"
    assert checks.git_finding([], "a" * 40, "a" * 40, "main").result == OK
    assert checks.worst([checks.Finding("x", OK, ""), checks.Finding("y", WARN, "")]) == WARN


# -- what the app really runs --------------------------------------------------------------------------------------
ENV = {"CORS_ALLOWED_ORIGINS": "https://qms.test", "CSRF_TRUSTED_ORIGINS": "https://qms.test",
       "STATIC_ROOT": "/home/ubuntu/QMS/backend/staticfiles", "DATABASE_PATH": "/home/ubuntu/QMS/backend/db.sqlite3"}
READS_ENV = {"DEBUG": False, "SECRET_KEY": "env", "ALLOWED_HOSTS": ["qms.test", "127.0.0.1", "localhost"],
             "CORS_ALLOW_ALL_ORIGINS": False, "CORS_ALLOWED_ORIGINS": ["https://qms.test"],
             "CSRF_TRUSTED_ORIGINS": ["https://qms.test"], "STATIC_ROOT": "/home/ubuntu/QMS/backend/staticfiles",
             "DATABASE": "/home/ubuntu/QMS/backend/db.sqlite3", "lines": {}}


def by_check(findings):
    return {f.check: f for f in findings}


def test_an_app_that_reads_the_environment_is_all_ok():
    found = checks.django_findings(READS_ENV, ENV, ["qms.test"])
    assert {f.result for f in found} == {"ok"}, found


def test_the_insecure_app_of_the_field_report_fails_with_its_lines_and_the_fix():
    """DEBUG on, the committed django-insecure- key, CORS open to all, origins listed in settings.py."""
    app = {**READS_ENV, "DEBUG": True, "SECRET_KEY": "insecure", "CORS_ALLOW_ALL_ORIGINS": True,
           "CSRF_TRUSTED_ORIGINS": ["http://localhost:3000", "https://qms.test"],
           "lines": {"DEBUG": "backend/settings.py:26: DEBUG = True",
                     "CSRF_TRUSTED_ORIGINS": "backend/settings.py:40: CSRF_TRUSTED_ORIGINS = ['http://localhost:3000',"}}
    found = by_check(checks.django_findings(app, ENV, ["qms.test"]))
    assert found["app DEBUG"].result == "fail"
    assert found["app DEBUG"].fix == 'backend/settings.py:26: DEBUG = True -> DEBUG = os.environ.get("DEBUG") == "1"'
    assert found["app SECRET_KEY"].result == "fail" and "django-insecure-" in found["app SECRET_KEY"].saw
    assert found["app CORS"].result == "fail" and "app CORS_ALLOWED_ORIGINS" not in found
    csrf = found["app CSRF_TRUSTED_ORIGINS"]
    assert csrf.result == "warn" and "set in the code" in csrf.saw and csrf.fix.startswith("backend/settings.py:40:")


def test_a_database_or_static_root_the_tool_does_not_know_fails():
    app = {**READS_ENV, "DATABASE": "/home/ubuntu/QMS/backend/data.db", "ALLOWED_HOSTS": ["*"]}
    found = by_check(checks.django_findings(app, ENV, ["qms.test"]))
    assert found["app DATABASE"].result == "fail" and "backups copy /home/ubuntu/QMS/backend/db.sqlite3" in \
        found["app DATABASE"].fix
    assert found["app ALLOWED_HOSTS"].result == "fail" and "any Host header" in found["app ALLOWED_HOSTS"].saw


def test_the_settings_script_output_is_found_among_other_lines():
    assert checks.parse_django_settings("warning: x\nQMS-SETTINGS {\"DEBUG\": false}\n") == {"DEBUG": False}
    assert checks.parse_django_settings("Traceback ...\n") is None


def test_what_a_stranger_gets():
    good = by_check(checks.outside_findings({"host": "400", "origin": "0", "debug404": "0"}))
    assert {f.result for f in good.values()} == {"ok"}
    bad = by_check(checks.outside_findings({"host": "200", "origin": "1", "debug404": "1"}))
    assert {f.result for f in bad.values()} == {"fail"}
    assert "Host: evil.example gets 200" in bad["foreign Host header"].saw


def test_check_deploy_leaves_out_what_nginx_does():
    output = ("System check identified some issues:\n\nWARNINGS:\n?: (security.W004) You have not set a value for "
              "SECURE_HSTS_SECONDS.\n?: (security.W008) ...\n?: (security.W012) SESSION_COOKIE_SECURE ...\n")
    finding = checks.check_deploy_finding(output, failed=False)
    assert finding.result == "warn" and finding.saw == "security.W012"
    assert finding.fix.startswith("in settings.py: SESSION_COOKIE_SECURE = not DEBUG; fab manage")
    assert checks.check_deploy_finding("System check identified no issues (0 silenced).\n", False).result == "ok"


def test_memory_is_the_cgroups_limit_where_there_is_one():
    """The stand-in (and a container VPS) sees the host's MemTotal; its 1 GB limit is what the app may use."""
    output = ("/dev/x 264212084 28428972 77961940 27% /\nMemTotal: 24683584 kB\nMemAvailable: 22852528 kB\n"
              "SwapTotal: 0 kB\nSwapFree: 0 kB\nCgroupLimit: 1073741824\nCgroupUsage: 902084352\n"
              "CgroupInactive: 16617216\n")
    memory = next(f for f in checks.resource_findings(output) if f.check == "memory available")
    assert memory.saw == "179 MB of 1024 MB (18%) (the cgroup's limit)"
    unlimited = output.replace("CgroupLimit: 1073741824", "CgroupLimit: max")
    assert next(f for f in checks.resource_findings(unlimited) if f.check == "memory available").saw.endswith(
        "MB of 24105 MB (93%)")


# -- captured on the stand-in (Debian 12's ufw 0.36.2, as on Ubuntu 24.04; systemd 252) ------------------------------
CAPTURED = Path(__file__).parent / "captured"


def ufw(name):
    return checks.parse_ufw((CAPTURED / f"ufw-{name}.txt").read_text())


def test_ufw_rules_are_read_in_order_incoming_ipv4_only():
    many = ufw("many-rules")
    assert (many.state, many.incoming) == ("active", "deny")
    assert [(r.to, r.action, r.source) for r in many.rules] == [
        ("22/tcp", "ALLOW", "Anywhere"), ("80,443/tcp (Nginx Full)", "ALLOW", "Anywhere"),
        ("8000/tcp", "ALLOW", "10.0.0.0/8"), ("443", "DENY", "Anywhere"), ("1000:2000/tcp", "ALLOW", "Anywhere"),
        ("2222/tcp", "LIMIT", "Anywhere"), ("8080 on eth0", "ALLOW", "Anywhere")]   # not the v6 copies, not OUT 53
    # the first rule that covers a port decides: Nginx Full comes before the DENY 443; 8000 only from a network
    assert checks.ufw_blocked(many, [80, 443, 1500, 2222, 8080, 8000]) == {8000: "default deny incoming"}
    assert checks.ufw_finding(many, (80, 443)) == checks.Finding("ufw", OK, "active, allows 80, 443")


def test_ufw_active_with_ssh_only_blocks_the_web_ports():
    finding = checks.ufw_finding(ufw("ssh-only"), (80, 443))
    assert finding.result == FAIL
    assert finding.saw == "active, blocks 80 (default deny incoming), 443 (default deny incoming)"
    assert finding.fix == "sudo ufw allow 80,443/tcp"
    assert checks.ufw_finding(ufw("ssh-only"), (80,)).fix == "sudo ufw allow 80/tcp"
    assert checks.ufw_finding(ufw("nginx-full"), (80, 443)).result == OK


def test_a_deny_or_reject_rule_ahead_of_the_allow_blocks_even_with_default_allow():
    first = ufw("deny-first")
    assert first.incoming == "allow"
    # DENY 80 comes first; REJECT 443/tcp too (the later 443 rule is for one destination address only)
    assert checks.ufw_blocked(first, [80, 443, 22, 3000]) == {80: "rule 80 DENY", 443: "rule 443/tcp REJECT"}
    finding = checks.ufw_finding(first, (80, 443))
    assert finding.result == FAIL and finding.fix.startswith("sudo ufw insert 1 allow 80,443/tcp")


def test_ufw_inactive_missing_or_unreadable():
    assert checks.ufw_finding(ufw("inactive"), (80, 443)) == checks.Finding("ufw", OK, "inactive")
    assert checks.ufw_blocked(ufw("inactive"), (80, 443)) == {}
    assert checks.ufw_finding(checks.parse_ufw("ufw: not installed\n"), (80,)).saw == "not installed"
    # a container without CAP_NET_ADMIN: ufw cannot read iptables
    unreadable = checks.ufw_finding(ufw("no-net-admin"), (80,))
    assert unreadable.result == WARN and unreadable.saw.startswith("cannot read it: ERROR: problem running iptables")


def test_a_port_that_listens_but_does_not_answer_from_here_names_the_firewall():
    listeners = {80: "nginx", 443: "nginx", 8000: "uvicorn"}
    found = by_check(checks.reach_findings("203.0.113.7", {80: "", 443: "gives no answer in 3 s"}, listeners, {}))
    assert found["port 80 from here"].result == OK
    cloud = found["port 443 from here"]
    assert cloud.result == FAIL and cloud.saw == ("203.0.113.7:443 gives no answer in 3 s from this machine, though "
                                                  "nginx listens on the server")
    assert "Lightsail: the instance's Networking tab" in cloud.fix and "add rule HTTPS" in cloud.fix
    ufw_too = checks.reach_findings("203.0.113.7", {80: "gives no answer in 3 s"}, listeners, {80: "default deny"})
    assert ufw_too[0].result == FAIL and ufw_too[0].fix == "ufw blocks it (see ufw)"


def test_certbot_renewal_from_apt_or_snap_both_or_neither():
    def show(apt, snap):
        return "\n\n".join(f"Id={name}\nLoadState={'loaded' if state else 'not-found'}\n"
                           f"ActiveState={state or 'inactive'}"
                           for name, state in (("certbot.timer", apt), ("snap.certbot.renew.timer", snap)))

    def renewal(apt, snap):
        return checks.renewal_finding(checks.parse_units_show(show(apt, snap)))
    assert renewal("active", None) == checks.Finding("certificate renewal timer", OK, "certbot.timer (apt) active")
    assert renewal(None, "active") == checks.Finding("certificate renewal timer", OK,
                                                     "snap.certbot.renew.timer (snap) active")
    stopped = renewal(None, "inactive")
    assert stopped.result == WARN and stopped.fix == "sudo systemctl enable --now snap.certbot.renew.timer"
    both = renewal("active", "active")
    assert both.result == WARN and "two certbots" in both.saw and both.fix.startswith("keep one: sudo snap remove")
    neither = renewal(None, None)
    assert neither.result == WARN and neither.saw.startswith("neither certbot.timer (apt) nor snap.certbot.renew.timer")


def test_the_units_exposure_from_systemd_analyze_security():
    before = "→ Overall exposure level for qms-backend.service: 5.9 MEDIUM :-|\n"
    assert checks.parse_exposure(before) == (5.9, "MEDIUM")
    loose = checks.exposure_finding(before, "qms-backend", 2.0)
    assert loose.result == WARN and loose.saw == "5.9 MEDIUM (systemd-analyze security)"
    assert "qms.backend.exposure_max (2.0)" in loose.fix
    assert checks.exposure_finding("→ Overall exposure level for qms-backend.service: 1.2 OK :-)",
                                   "qms-backend", 2.0).result == OK
    missing = checks.exposure_finding("Unit qms-backend.service not found, cannot analyze.\n", "qms-backend", 2.0)
    assert missing.result == WARN and missing.saw.endswith("not found, cannot analyze.")


def test_a_750_home_directory_is_named_as_ubuntus_default():
    home = checks.untraversable_finding("www-data", "/home/ubuntu", "750")
    assert home.saw == "www-data cannot enter /home/ubuntu (mode 750: Ubuntu 21.04+ makes home directories 750)"
    assert home.fix.startswith("fab fix-perms (adds o+x")
    other = checks.untraversable_finding("www-data", "/srv/qms", "700")
    assert other.saw == "www-data cannot enter /srv/qms (mode 700)"
