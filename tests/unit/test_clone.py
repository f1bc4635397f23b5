"""The server's clone as git status shows it (what blocks a pull, what the server generated, the live database),
and the git commands that read and move it."""
import shlex
from types import SimpleNamespace

from tasks.core import clone
from tasks.core.clone import database_path, generated_patterns, parse_status

S = SimpleNamespace(backend=SimpleNamespace(dir="backend", static_dir="staticfiles", database="db.sqlite3"))
STATUS = """\
 M backend/quality/__pycache__/views.cpython-311.pyc
 M backend/staticfiles/admin/css/base.css
?? backend/quality/__pycache__/new.cpython-311.pyc
 M backend/db.sqlite3
 M backend/manage.py
?? backend/notes.txt
R  backend/old.py -> backend/new.py
 M frontend/staticfiles/logo.svg
"""


def test_the_servers_own_files_are_put_back_and_real_edits_block():
    found = parse_status(STATUS, generated_patterns(S), database_path(S))
    assert found.generated == ["backend/quality/__pycache__/views.cpython-311.pyc",
                               "backend/staticfiles/admin/css/base.css"]
    assert found.edits == ["backend/manage.py", "backend/notes.txt", "backend/new.py", "frontend/staticfiles/logo.svg"]
    assert found.database


def test_a_clean_clone_has_nothing_to_do():
    found = parse_status("", generated_patterns(S), database_path(S))
    assert not found.edits and not found.generated and not found.database


def test_the_static_dir_and_database_follow_the_settings():
    s = SimpleNamespace(backend=SimpleNamespace(dir="server/api", static_dir="collected", database="data/app.db"))
    found = parse_status(" M server/api/collected/x.css\n M server/api/data/app.db\n M backend/staticfiles/y.css\n",
                         generated_patterns(s), database_path(s))
    assert found.generated == ["server/api/collected/x.css"] and found.database
    assert found.edits == ["backend/staticfiles/y.css"]


def test_commits_come_from_rev_parse_and_ls_remote_output():
    sha = "aaf8768d2d9aea14e2119e799ca8a0de1fdc3935"
    assert clone.parse_commit(sha + "\n") == sha
    assert clone.parse_commit(f"{sha}\trefs/heads/main\n") == sha
    assert clone.parse_commit("") == ""                       # no commits yet, or no such branch
    assert clone.parse_commit("fatal: Needed a single revision\n") == ""
    assert clone.last_error("warning: x\nfatal: couldn't find remote ref nope\n") == \
        "fatal: couldn't find remote ref nope"
    assert clone.last_error("") == "no output"


def test_refs_and_commits_never_become_options():
    root = "/home/ubuntu/My QMS"
    hostile = "--upload-pack=touch /tmp/owned"
    for command in (clone.fetch_command(root, hostile), clone.resolve_command(root, hostile),
                    clone.is_ancestor_command(root, hostile, "HEAD"), clone.ls_remote_command(root, hostile),
                    clone.set_origin_command(root, hostile)):
        words = shlex.split(command)
        assert words[:3] == ["git", "-C", root]
        hit = next(i for i, w in enumerate(words) if w.startswith(hostile[:8]))
        assert "--end-of-options" in words[:hit] or "--" in words[:hit], command
    assert shlex.split(clone.move_command(root, "", "abc", "main"))[3:] == ["checkout", "-q", "-B", "main", "abc"]
    assert shlex.split(clone.move_command(root, "old", "abc", "main"))[3:] == ["merge", "-q", "--ff-only", "abc"]


def test_archive_takes_only_the_code_paths():
    command = clone.archive_command("/srv/qms", "a" * 40, ["backend", "pyproject.toml"], "/srv/qms/releases/r 1")
    archive, unpack = command.split(" | ")
    assert shlex.split(archive)[3:] == ["archive", "--format=tar", "a" * 40, "--", "backend", "pyproject.toml"]
    assert shlex.split(unpack) == ["tar", "-x", "-C", "/srv/qms/releases/r 1"]
