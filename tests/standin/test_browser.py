"""browser-check with Debian's chromium (headless, no sandbox as root, background networking off, the site's names
mapped to the stand-in): a correct deploy passes; the guide's failures that only a browser shows are reported."""
import json

import pytest

from tests.conftest import assert_one_line_error, fab
from tests.export_fixture import restamp
from tests.standin.conftest import example_app_module, set_up_example_app
from tests.standin.harness import more_settings

pytestmark = pytest.mark.standin


site = example_app_module("qmsbrowser", "site", make=set_up_example_app)


def variant(site, name: str, settings: str):
    """The stand-in's settings with more YAML under qms:."""
    conf = site.tmp / f"{name}.yaml"
    conf.write_text(more_settings(site.conf.read_text(), settings))
    return conf


def run(conf, *steps):
    for step in steps:
        result = fab("-f", conf, step, timeout=900)
        assert result.returncode == 0, f"{step}: {result.stdout[-2000:]}{result.stderr}"


def test_the_deployed_app_passes_with_every_request_listed(site):
    shots = site.tmp / "shots"
    result = site.fab("browser-check", "--screenshot", shots, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "https://qms.test/api/defects/" in result.stdout and "none wrong" in result.stdout
    for name in ("index.png", "admin_users.png"):
        assert (shots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    smoke = site.fab("smoke", "--browser", timeout=300)
    assert smoke.returncode == 0 and "none wrong" in smoke.stdout, smoke.stdout[-2000:] + smoke.stderr
    checked = site.fab("doctor", "--browser", "--json", timeout=300)
    browser = next(c for c in json.loads(checked.stdout)["checks"] if c["check"] == "browser")
    assert checked.returncode == 0 and browser["result"] == "ok", browser


def test_a_bundle_built_with_127_0_0_1_is_reported_naming_that_request(site):
    local = variant(site, "local-api", "  frontend:\n    api_url: http://127.0.0.1:8000/api\n")
    assert fab("-f", local, "build", timeout=900).returncode != 0     # build refuses it...
    restamp(site.app / "frontend" / "out")                            # ...so ship it the guide's way, by hand
    run(site.conf, "upload")
    result = site.fab("browser-check", timeout=300)
    line = assert_one_line_error(result, "browser-check", "http://127.0.0.1:8000/api/", "calls 127.0.0.1")
    assert "(fab build, then fab upload)" in line
    run(site.conf, "build", "upload")
    assert site.fab("browser-check", timeout=300).returncode == 0


def test_the_two_domain_cors_case_and_its_fix(site):
    """The site opened as https://qms.test, its bundle calling https://www.qms.test/api, the backend allowing only
    the www origin (the guide's section 6). A deploy or upload refuses such a .env (the app's settings are checked
    before a release serves), so it is written with `env` and `restart`, as by hand on a server."""
    api_www = "  frontend:\n    api_url: https://www.qms.test/api\n"
    both = variant(site, "both", api_www)                             # origins derived from both domains
    www_only = variant(site, "www-only",
                       api_www + "  backend:\n    env:\n      CORS_ALLOWED_ORIGINS: https://www.qms.test\n")
    run(both, "build", "upload")
    run(www_only, "env", "restart")
    result = fab("-f", www_only, "browser-check", timeout=300)
    assert_one_line_error(result, "CORS rejection", "https://www.qms.test/api/")
    run(both, "env", "restart")
    assert fab("-f", both, "browser-check", timeout=300).returncode == 0
    run(site.conf, "build", "upload")


def test_a_page_whose_script_throws_is_reported_with_the_console_error(site):
    (site.app / "frontend/pages/broken.js").write_text(
        "import { useEffect } from 'react';\n\n"
        "export default function Broken() {\n"
        "  useEffect(() => { throw new Error('broken on purpose'); }, []);\n"
        "  return <p>broken</p>;\n"
        "}\n")
    with_broken = variant(site, "broken", "  smoke:\n    pages: [/, /admin/users/, /broken/]\n")
    run(with_broken, "build", "upload")
    result = fab("-f", with_broken, "browser-check", timeout=300)
    assert_one_line_error(result, "/broken/", "(console)", "JavaScript error", "broken on purpose")
