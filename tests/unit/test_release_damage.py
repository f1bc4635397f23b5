"""Damaged releases, planned and found without a server: which files an upload sends again, the verify report, the
release a rollback names instead; and the release agent's checks run on real files in a temporary app root."""
import contextlib
import io
import json
import os
import subprocess
import sys

from tasks import release
from tasks.core import deploy_records as records
from tasks.core import releases
from tasks.remote import release_agent as agent
from tests.export_fixture import make_export

FRONT = "frontend/out"


def test_an_upload_sends_again_the_damaged_files_it_would_otherwise_link():
    current = {"a.html": ["1", 10], "b.js": ["2", 20], "c.css": ["3", 30], "gone.js": ["4", 1]}
    local = {"a.html": ["1", 10], "b.js": ["9", 21], "c.css": ["3", 30], "new.js": ["5", 5]}
    damage = {"export": [["differs", "a.html"], ["missing", "b.js"], ["missing", "gone.js"], ["unexpected", "x.txt"]],
              "backend": [["differs", "backend/manage.py"]]}
    # a.html is kept as it was: sent again. b.js changed anyway and gone.js is dropped: nothing more to do; an
    # unexpected file is never linked; the backend is a fresh git archive per release.
    assert releases.to_resend(damage, local, current) == ["a.html"]
    changed, removed = releases.plan_upload(local, current, ("a.html",))
    assert changed == {"a.html": ["1", 10], "b.js": ["9", 21], "new.js": ["5", 5]} and removed == ["gone.js"]
    assert releases.to_resend({}, local, current) == [] and releases.to_resend(damage, local, None) == []


def test_the_verify_report_has_one_line_per_damaged_release():
    rows = [{"id": "r1", "damage": {"export": [], "backend": [["differs", "backend/manage.py"]]}},
            {"id": "r2", "damage": {"export": []}},
            {"id": "r3", "current": True, "damage": {"export": [["missing", f"p{i}.html"] for i in range(5)]}}]
    assert releases.verify_report(rows, FRONT) == [
        "r1: damaged, 1 file: differs backend/manage.py",
        "r3 (served): damaged, 5 files: missing frontend/out/p0.html, missing frontend/out/p1.html, "
        "missing frontend/out/p2.html and 2 more"]
    assert releases.verify_report(rows[1:2], FRONT) == []


def test_a_rollback_names_the_nearest_sound_release_an_older_one_first():
    bad = {"export": [["missing", "a.html"]]}
    rows = [{"id": "r1"}, {"id": "r2", "damage": bad}, {"id": "r3"}, {"id": "r4", "damage": bad}, {"id": "r5"},
            {"id": "r6", "current": True}]
    assert records.nearest_sound(rows, "r4") == ["r3", "r5", "r1"]
    assert records.nearest_sound(rows, "r2") == ["r1", "r3", "r5"]
    assert records.nearest_sound([{"id": "r1", "damage": bad}, {"id": "r2", "current": True}], "r1") == []


def sealed_release(tmp_path, rid="r1", **kw):
    """An app root with one sealed release: a made-up export, backend code, a venv, collected static files."""
    app = tmp_path / "app"
    root = app / "releases" / rid
    make_export(root / "frontend" / "out", **kw)
    for rel, text in {"backend/manage.py": "print(1)\n", "backend/qms/settings.py": "DEBUG = False\n",
                      "backend/.venv/bin/python": "venv", "backend/qms/__pycache__/settings.pyc": "x",
                      "backend/staticfiles/admin.css": "css"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    with contextlib.redirect_stdout(io.StringIO()):
        agent.seal(str(app), rid, "/run/qms/r.sock", json.dumps(
            {"code": {"paths": ["backend"], "skipped": ["backend/.venv", "backend/staticfiles"]}}))
    os.symlink(f"releases/{rid}", app / "current")
    return app, root


def listing(app, *checked) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        agent.listing(str(app), FRONT, False, checked)
    return json.loads(out.getvalue())["releases"][0]


def test_the_agent_finds_damage_by_size_at_once_and_by_hash_only_when_asked(tmp_path):
    app, root = sealed_release(tmp_path)
    code = json.loads((root / "release.json").read_text())["backend_manifest"]
    assert sorted(code) == ["backend/manage.py", "backend/qms/settings.py"]   # what git archive made, nothing else
    assert "damage" not in listing(app)   # the plain listing checks nothing
    assert listing(app, "current")["damage"] == {"export": [], "backend": []}
    with open(root / FRONT / "index.html", "r+b") as f:   # edited in place, same size
        f.write(b"X")
    (root / FRONT / "login.html").unlink()
    (root / "backend" / "manage.py").write_text("print(2)\n")
    quick = listing(app, "other")["damage"]
    assert quick == {"export": [["missing", "login.html"]], "backend": []}
    assert listing(app, "current")["damage"] == {"export": [["differs", "index.html"], ["missing", "login.html"]],
                                                 "backend": [["differs", "backend/manage.py"]]}
    (root / FRONT / "build-info.json").unlink()
    assert listing(app, "*")["damage"]["export"] == [["missing", "build-info.json"]]


def test_an_upload_whose_base_file_vanished_is_refused_in_one_line(tmp_path):
    app, root = sealed_release(tmp_path, marker="one")
    new = tmp_path / "new"
    info = make_export(new, marker="two")
    base = agent.read_manifest(str(root / FRONT))
    changed, removed = releases.plan_upload(info["manifest"], base)
    linked = next(rel for rel in info["manifest"] if rel not in changed)
    (root / FRONT / linked).unlink()   # deleted after the client planned
    plan = {"base": "r1", "changed": changed, "removed": removed, "manifest_sha": releases.manifest_digest(
        info["manifest"]), "info": {k: info[k] for k in ("env", "api_url", "git_sha", "dirty", "built_at")}}
    stream = io.BytesIO()
    release.tar_stream(new, plan)(stream.write, lambda n: None)
    result = subprocess.run([sys.executable, agent.__file__, "receive", str(app), "r2", FRONT],
                            input=stream.getvalue(), capture_output=True)
    assert result.returncode == 1 and b"Traceback" not in result.stderr, result.stderr
    assert json.loads(result.stdout) == {"error": f"{linked} of release r1 vanished during the upload: upload again"}
    assert not (app / "releases" / "r2" / "frontend" / "out.incoming").exists()
