"""Bundle checks and release planning: data in, verdict out."""
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from tasks.build import check_bundle
from tasks.core import bundle, releases
from tasks.core.errors import UserError
from tasks.core.settings import check_layer
from tests.export_fixture import make_export

BUNDLES = Path(__file__).parent / "bundles"   # files of real `next build` exports; README.md there says how
API = "https://qms.example.com/api"
GUIDE_PAGE = "_next/static/chunks/pages/index-97879f333f052854.js"


def test_a_good_export_passes_and_its_manifest_covers_every_file(tmp_path):
    info = make_export(tmp_path, api_url="https://qms.example.com/api")
    assert bundle.scan(tmp_path, "https://qms.example.com/api") == []
    assert "index.html" in info["manifest"] and "admin/users.html" in info["manifest"]
    assert bundle.BUILD_INFO not in info["manifest"]
    assert bundle.read_build_info(tmp_path)["env"] == "standin"


def test_local_api_urls_are_named_with_file_and_text(tmp_path):
    make_export(tmp_path, api_url="http://127.0.0.1:8000/api")
    problems = bundle.scan(tmp_path, "https://qms.example.com/api")
    texts = {p.text for p in problems}
    assert "http://127.0.0.1:8000/api" in texts
    assert any(p.path.startswith("_next/static/chunks/pages/index-") for p in problems)
    assert any(p.path == "the bundle" and "no https://qms.example.com/api" in p.text for p in problems)


def test_real_axios_and_fetch_exports_pass_though_axios_carries_a_localhost_base():
    axios = (BUNDLES / "axios-app/_next/static/chunks/153-8d14dcc4fcc61d80.js").read_bytes()
    assert b'window.location.href||"http://localhost"' in axios   # what issue 18 tripped over
    assert bundle.scan(BUNDLES / "axios-app", API) == []
    assert bundle.scan(BUNDLES / "fetch-app", API) == []


def test_the_guides_axios_client_passes_and_a_hard_coded_call_next_to_it_is_refused():
    problems = bundle.scan(BUNDLES / "guide-app", API)
    assert [(p.path, p.text, p.kind) for p in problems] == [
        (GUIDE_PAGE, "http://localhost:8000/api/health/", bundle.LITERAL)]
    assert problems[0].context == ('/defects/").then(e=>t(e.data)),l.A.get("http://localhost:8000/api/health/")'
                                   '.then(e=>h(200===e.status))},[]),(0,a.')


def test_a_next_public_variable_unset_at_build_time_is_named_as_such():
    problems = bundle.scan(BUNDLES / "fetch-app-unset", API)
    assert [(p.path, p.text, p.kind) for p in problems] == [
        ("index.html", "undefined/docs/", bundle.UNSET), ("the bundle", f"no {API} anywhere", bundle.MISSING)]
    assert '<a href="undefined/docs/">API docs</a>' in problems[0].context


@pytest.mark.parametrize("code, text", [
    ('fetch("http://localhost:8000")', "http://localhost:8000"),
    ('fetch("http://127.0.0.1/api/x")', "http://127.0.0.1/api/x"),
    ("fetch('http://0.0.0.0:8000/api')", "http://0.0.0.0:8000/api"),
    ('fetch("http://[::1]:8000/api")', "http://[::1]:8000/api"),
    ('fetch("https://localhost?x=1")', "https://localhost?x=1"),
    ('fetch("http://localhost".concat(e))', "http://localhost"),   # a bare origin something is appended to
    ('fetch("http://localhost" + e)', "http://localhost"),
    ("fetch(`http://localhost${e}`)", "http://localhost"),
    ('fetch("undefined/defects/")', "undefined/defects/"),
])
def test_calls_to_a_local_or_undefined_api_are_caught(tmp_path, code, text):
    make_export(tmp_path, api_url=API)
    (tmp_path / "x.js").write_text(code)
    assert [(p.path, p.text) for p in bundle.scan(tmp_path, API)] == [("x.js", text)]


@pytest.mark.parametrize("code", ['new URL(e,"http://localhost")', "o=window.location.href||'http://localhost',",
                                  '<a href="http://127.0.0.1">local</a>'])
def test_a_bare_local_origin_used_as_a_base_passes(tmp_path, code):
    make_export(tmp_path, api_url=API)
    (tmp_path / "x.js").write_text(code)
    assert bundle.scan(tmp_path, API) == []


def test_every_hit_is_listed_with_one_printable_line_of_context(tmp_path):
    make_export(tmp_path, api_url=API)
    (tmp_path / "x.js").write_text('a="http://localhost:3000/a";\n\tb="undefined/b"')
    problems = bundle.scan(tmp_path, API)
    assert [(p.text, p.kind) for p in problems] == [("http://localhost:3000/a", bundle.LITERAL),
                                                    ("undefined/b", bundle.UNSET)]
    assert problems[0].context == 'a="http://localhost:3000/a";  b="undefined/b"'


def test_the_allow_list_lets_a_hit_pass_by_its_text_or_its_context():
    assert bundle.scan(BUNDLES / "guide-app", API, ["http://localhost:8000/api/health/"]) == []
    assert bundle.scan(BUNDLES / "guide-app", API, ["l.A.get(\"http://localhost:8000"]) == []
    assert len(bundle.scan(BUNDLES / "guide-app", API, ["http://localhost:3000"])) == 1
    assert check_layer({"frontend": {"bundle_allow": "localhost"}}, "f.yaml") == (
        "f.yaml: qms.frontend.bundle_allow must be a list of non-empty strings, got 'localhost'")


def test_build_lists_every_hit_then_refuses_in_one_line_naming_the_fix_and_the_allow_list(tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(BUNDLES / "guide-app", out)
    (out / "x.js").write_text('fetch("undefined/x/")')
    with pytest.raises(UserError) as e:
        check_bundle(out, API, [])
    assert capsys.readouterr().out.splitlines() == [
        f"build: {GUIDE_PAGE}: 'http://localhost:8000/api/health/' looks like a literal in your source; context: "
        '.../defects/").then(e=>t(e.data)),l.A.get("http://localhost:8000/api/health/").then(e=>h(200===e.status))'
        "},[]),(0,a....",
        "build: x.js: 'undefined/x/' looks like a NEXT_PUBLIC_* variable that was not set at build time; context: "
        '...fetch("undefined/x/")...']
    message = e.value.reason
    assert "\n" not in message
    assert message.startswith(f"the bundle would call the wrong API: {GUIDE_PAGE} contains "
                              "'http://localhost:8000/api/health/' (and 1 more, listed above): remove the literal from "
                              "the frontend's source and read process.env.NEXT_PUBLIC_API_URL")
    assert "set the variable for the build (NEXT_PUBLIC_API_URL comes from qms.frontend.api_url" in message
    assert "add it (or a part of its context) to qms.frontend.bundle_allow" in message
    check_bundle(out, API, ["http://localhost:8000/api/health/", "undefined/x/"])


def test_a_local_api_url_in_the_settings_is_named_as_the_thing_to_change(tmp_path, capsys):
    make_export(tmp_path, api_url="http://127.0.0.1:8000/api")
    with pytest.raises(UserError) as e:
        check_bundle(tmp_path, "http://127.0.0.1:8000/api", [])
    assert "is the API URL the build was given" in capsys.readouterr().out
    assert e.value.reason.startswith("the bundle would call the wrong API: _next/static/chunks/pages/")
    assert "set qms.frontend.api_url (now http://127.0.0.1:8000/api) to an address visitors can reach" in e.value.reason


def test_a_bundle_without_the_api_url_says_to_read_the_variable(tmp_path, capsys):
    make_export(tmp_path, api_url="https://elsewhere.example.com/api")
    with pytest.raises(UserError) as e:
        check_bundle(tmp_path, API, [])
    assert e.value.reason == (f"the bundle would call the wrong API: the bundle has no {API} anywhere: make the frontend "
                              f"read process.env.NEXT_PUBLIC_API_URL (the build sets it to {API} from "
                              "qms.frontend.api_url); then build again")


def test_environment_mismatch_names_both_and_the_fix(tmp_path):
    info = make_export(tmp_path, env="production")
    message = bundle.environment_mismatch(info, "staging")
    assert "built for 'production', not 'staging'" in message and "conf/staging.yaml build" in message
    assert bundle.environment_mismatch(None, "staging").startswith("the export has no build-info.json")
    assert bundle.environment_mismatch(info, "production") is None


def test_plan_upload_sends_only_changed_files():
    local = {"a.html": ["1", 10], "b.js": ["2", 20], "c.css": ["3", 30]}
    current = {"a.html": ["1", 10], "b.js": ["9", 20], "old.js": ["4", 1]}
    assert releases.plan_upload(local, current) == ({"b.js": ["2", 20], "c.css": ["3", 30]}, ["old.js"])
    assert releases.plan_upload(local, None) == (local, [])


def test_manifest_digest_matches_the_agents():
    from tasks.remote.release_agent import canonical
    manifest = {"b.js": ["2", 20], "a.html": ["1", 10]}
    assert releases.manifest_digest(manifest) == canonical(dict(reversed(list(manifest.items()))))


def test_release_ids_sort_by_time_and_name_the_commit():
    a = releases.release_id(datetime(2026, 1, 2, 3, 4, 5), "abcdef123456", False)
    b = releases.release_id(datetime(2026, 1, 2, 3, 4, 6), "0123456", True)
    assert a == "20260102-030405-abcdef1" and b == "20260102-030406-0123456-dirty" and a < b


def test_agent_output_parsing():
    from tasks.remote import parse_answer
    assert parse_answer('noise\n{"id": "x"}\n') == {"id": "x"}
    assert "no answer" in parse_answer("Traceback ...")["error"]
