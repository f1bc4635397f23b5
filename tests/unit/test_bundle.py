"""Bundle checks and release planning: data in, verdict out."""
from datetime import datetime

from tasks.core import bundle, releases
from tests.export_fixture import make_export


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


def test_localhost_and_undefined_are_caught(tmp_path):
    make_export(tmp_path, api_url="https://qms.example.com/api")
    chunks = tmp_path / "_next" / "static" / "chunks"
    (chunks / "x.js").write_text('fetch("undefined/defects/")')
    (chunks / "y.js").write_text('a="http://localhost:3000/api"')
    found = sorted((p.path, p.text) for p in bundle.scan(tmp_path, "https://qms.example.com/api"))
    assert found == [("_next/static/chunks/x.js", "undefined/defects/"),
                     ("_next/static/chunks/y.js", "http://localhost:3000/api")]


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
