"""The server's clone as git status shows it: what blocks a pull, what the server generated, the live database."""
from types import SimpleNamespace

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
