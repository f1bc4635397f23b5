"""The guide's own QMS, as teams write it (tests/qms_app: TypeScript, an axios client, CORS and CSRF origins listed
in settings.py, the admin at /django-admin/), end to end on a stand-in of its own: app-check, setup, the site and
its API through nginx, doctor, browser-check and a deploy. The tool must take it as it is and say, not hide, that
its origins are written in the code."""
import json
import re
import subprocess

import pytest

from tests.conftest import REPO, run_tool
from tests.standin.conftest import get, make_standin, remove_standin, with_example_app

pytestmark = pytest.mark.standin

# the one change app-check asks of the guide's app, in its .gitignore: it lists .env, .env.local and .env.production
# by name, so an .env.staging would reach git (the guide's section 10), and id_rsa* but no other ssh key, *.sqlite3
# but not SQLite's journal and WAL files or a compressed copy
MISSING_IGNORES = [".env.*", "*.env", "id_ed25519*", "id_ecdsa*", "id_dsa*", "*.sqlite3.*", "*-journal", "*-wal",
                   "*-shm", "*.sql.gz", "*.dump"]
SETTINGS = ("  smoke:\n    pages: [/, /login/, /admin/users/]\n"
            "  setup:\n    superuser: ''\n    seed_command: seed_defect_data\n")


@pytest.fixture(scope="module")
def qms(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("qmsapp")
    s = with_example_app(make_standin("qmsguide", tmp), tmp, settings=SETTINGS, source=REPO / "tests/qms_app")
    s.tmp = tmp
    s.check = run_tool("inv", "-f", s.conf, "app-check", "--json")
    with open(s.app / ".gitignore", "a") as ignore:
        ignore.write("".join(f"{pattern}\n" for pattern in MISSING_IGNORES) + "!.env.example\n")
    s.publish(".gitignore: every .env.* file, ssh key, SQLite side file and dump")
    s.setup = s.fab("setup", timeout=1800)
    yield s
    remove_standin(s)


def test_app_check_names_the_one_change_and_the_origins_written_in_the_code(qms):
    assert qms.check.returncode == 1
    checks = json.loads(qms.check.stdout)["checks"]
    assert [c["saw"] for c in checks if c["result"] == "fail"] == [
        f".gitignore does not ignore {pattern}: add a line `{pattern}`" for pattern in MISSING_IGNORES]
    found = {c["check"]: c for c in checks}
    for name in ("CORS_ALLOWED_ORIGINS", "CSRF_TRUSTED_ORIGINS"):
        row = found[f"settings: {name}"]
        assert row["result"] == "warn" and "set in the code" in row["saw"], row
        assert row["saw"].startswith("backend/backend/settings.py:"), row
    assert found["frontend: local API URL"]["result"] == "ok"


def test_setup_serves_it_over_https_with_its_api(qms):
    assert qms.setup.returncode == 0, qms.setup.stdout[-3000:] + qms.setup.stderr
    # app-check's warnings, and the chain's note on the origins, are shown where a user looks
    assert "set in the code" in qms.setup.stdout
    code, body = get(qms, "/")
    assert code == 200 and "QMS (guide) frontend v1" in body
    code, body = get(qms, "/api/defects/")
    assert code == 200 and len(json.loads(body)) >= 1           # the seed command ran
    assert get(qms, "/login/")[0] == 200 and get(qms, "/admin/users/")[0] == 200
    assert get(qms, "/django-admin/login/")[0] == 200


def test_doctor_passes_with_warnings_that_show_the_lines(qms):
    result = qms.fab("doctor", "--json", timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    found = {c["check"]: c for c in json.loads(result.stdout)["checks"]}
    csrf = found["app CSRF_TRUSTED_ORIGINS"]
    assert csrf["result"] == "warn" and "set in the code" in csrf["saw"]
    assert re.match(r"backend/settings\.py:\d+: CSRF_TRUSTED_ORIGINS = ", csrf["fix"]), csrf
    for check in ("app DEBUG", "app SECRET_KEY", "app DATABASE", "foreign Origin", "foreign Host header",
                  "404 page", "API URL in the bundle", "CORS preflight"):
        assert found[check]["result"] == "ok", found[check]


def test_browser_check_sees_the_axios_calls_succeed(qms):
    result = qms.fab("browser-check", timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "https://qms.test/api/defects/" in result.stdout and "none wrong" in result.stdout
    assert "to the API" in result.stdout


def test_a_deploy_of_both_halves(qms):
    views = qms.app / "backend/defects/views.py"
    views.write_text(re.sub(r'^VERSION = .*$', 'VERSION = "2"', views.read_text(), flags=re.M))
    layout = qms.app / "frontend/app/layout.tsx"
    layout.write_text(layout.read_text().replace("QMS (guide) frontend v1", "QMS (guide) frontend v2"))
    subprocess.run(["git", "-C", str(qms.app), "-c", "user.name=dev", "-c", "user.email=dev@qms.test", "commit",
                    "-qam", "v2"], check=True)
    result = qms.fab("deploy", "--push", timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert json.loads(get(qms, "/api/version/")[1]) == {"version": "2"}
    assert "QMS (guide) frontend v2" in get(qms, "/")[1]
