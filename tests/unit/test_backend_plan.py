"""The backend's plan: units, .env, manage.py command lines, parsers. Data in, text or verdict out."""
import pytest

from tasks.core import backend_plan as plan
from tasks.core.errors import UserError
from tasks.core.settings import defaults, resolve


def settings(**qms):
    s = resolve([], {**defaults(), "domains": ["qms.example.com", "www.qms.example.com"], **qms}, "conf/production.yaml")
    s.secrets = {"SECRET_KEY": 'k$y "with" \\ quotes # and spaces'}
    return s


def test_the_unit_is_a_template_per_release_run_by_the_apps_user():
    units = plan.render_units(settings())
    service = units["service"]
    release = "/home/ubuntu/QMS/releases/%i"
    # through the release's own links: a later change of where manage.py or the venv is never breaks this release
    assert f"ExecStart={release}/venv/bin/uvicorn backend.asgi:application --fd 3 --workers 2" in service
    assert plan.release_links(settings()) == {"app": "backend", "venv": "backend/.venv"}
    assert "EnvironmentFile=/home/ubuntu/QMS/shared/.env" in service
    assert f"WorkingDirectory={release}/app" in service
    assert f"Environment=STATIC_ROOT={release}/app/staticfiles" in service
    # the app writes its database directory and media, nothing of its code or venv
    assert "ReadWritePaths=/home/ubuntu/QMS/shared/db /home/ubuntu/QMS/shared/media" in service
    assert "ProtectSystem=strict" in service and "NoNewPrivileges=yes" in service
    assert "Restart=on-failure" in service and "User=qms" in service and "MemoryMax=400M" in service
    assert "ListenStream=/run/qms-backend/%i.sock" in units["socket"]
    assert "SocketGroup=www-data" in units["socket"] and "SocketMode=0660" in units["socket"]
    assert plan.unit_paths(settings())["service"] == "/etc/systemd/system/qms-backend@.service"
    assert plan.exec_start_problem(service, True) is None


@pytest.mark.parametrize("line, fragment", [
    ("ExecStart=uv run uvicorn backend.asgi:application", "'uv', not an absolute path"),
    ("ExecStart=-uvicorn app", "'uvicorn', not an absolute path"),
])
def test_the_guides_bare_uv_is_refused_with_the_fix(line, fragment):
    problem = plan.exec_start_problem(f"[Service]\n{line}\n", None)
    assert fragment in problem and "203/EXEC" in problem and "give the absolute path" in problem


def test_a_program_the_server_lacks_is_refused():
    assert "run deps first" in plan.exec_start_problem("ExecStart=/srv/.venv/bin/uvicorn x:y\n", False)


def test_env_follows_the_domains_and_survives_special_characters():
    text = plan.render_env(settings())
    assert 'ALLOWED_HOSTS="qms.example.com,www.qms.example.com,127.0.0.1,localhost"' in text
    assert 'CORS_ALLOWED_ORIGINS="https://qms.example.com,https://www.qms.example.com"' in text
    assert 'CSRF_TRUSTED_ORIGINS="https://qms.example.com,https://www.qms.example.com"' in text
    assert 'SECRET_KEY="k$y \\"with\\" \\\\ quotes # and spaces"' in text
    assert 'DATABASE_PATH="/home/ubuntu/QMS/shared/db/db.sqlite3"' in text
    assert "STATIC_ROOT" not in text   # one per release: the unit and manage.py set it


def test_env_without_a_secret_key_names_the_file():
    s = settings()
    s.secrets = {}
    with pytest.raises(UserError, match="SECRET_KEY is missing"):
        plan.render_env(s)


APP_AND_TOOL_SECRETS = {"SECRET_KEY": "k" * 40, "EMAIL_HOST_PASSWORD": "p@ss word", "SENTRY_DSN": "",
                        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG",
                        "DJANGO_SUPERUSER_PASSWORD": "once-only"}


def test_the_apps_secrets_reach_the_env_and_the_tools_own_stay_here():
    s = settings()
    s.secrets = dict(APP_AND_TOOL_SECRETS)
    env = plan.parse_env(plan.render_env(s))
    assert env["EMAIL_HOST_PASSWORD"] == "p@ss word" and env["SENTRY_DSN"] == "" and env["SECRET_KEY"] == "k" * 40
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "DJANGO_SUPERUSER_PASSWORD"} & env.keys()
    assert next(iter(env)) == "SECRET_KEY"


def test_a_tool_key_goes_too_when_listed_and_a_missing_one_is_named():
    s = settings(backend={**defaults()["backend"], "secret_env": ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]})
    s.secrets = dict(APP_AND_TOOL_SECRETS)
    env = plan.parse_env(plan.render_env(s))
    assert env["AWS_ACCESS_KEY_ID"] == "AKIAIOSFODNN7EXAMPLE" and "DJANGO_SUPERUSER_PASSWORD" not in env
    s.secrets = {"SECRET_KEY": "k" * 40, "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE"}
    with pytest.raises(UserError, match="AWS_SECRET_ACCESS_KEY is missing from .*: qms.backend.secret_env lists it"):
        plan.render_env(s)


@pytest.mark.parametrize("secrets, backend_env, message", [
    ({"DEBUG": "1"}, {}, "DEBUG in /x/production.env would replace the value this tool writes from the settings: "
                         "remove it there (to override it on purpose, set it in qms.backend.env)"),
    ({"ALLOWED_HOSTS": "*"}, {}, "ALLOWED_HOSTS in /x/production.env would replace"),
    ({"SITE_NAME": "QMS"}, {"SITE_NAME": "QMS"},
     "SITE_NAME is in both /x/production.env and qms.backend.env (conf/production.yaml): keep it in one"),
    ({"my-key": "v"}, {}, "my-key in /x/production.env is not a variable name: use letters, digits and _ only"),
])
def test_a_key_with_two_sources_or_no_valid_name_is_refused_without_its_value(secrets, backend_env, message):
    s = settings(backend={**defaults()["backend"], "env": backend_env})
    s.secrets, s.secrets_path = {"SECRET_KEY": "k" * 40, **secrets}, "/x/production.env"
    with pytest.raises(UserError) as e:
        plan.render_env(s)
    assert message in e.value.message and "\n" not in e.value.message
    assert not any(value in e.value.message for value in ("*", "k" * 40))


def test_manage_runs_as_the_apps_user_in_a_releases_environment_with_quoted_words():
    command = plan.manage_command(settings(), "createsuperuser --username 'a b'; rm -rf /", "20261202-010000-abc1234")
    assert 'systemd-run --unit="$u" --quiet --pipe --wait --collect --uid=qms --gid=qms' in command
    assert command.startswith("u=qms-manage-$$; trap 'systemctl stop -- \"$u\"' TERM; ")   # ended with its guard
    assert "-p EnvironmentFile=/home/ubuntu/QMS/shared/.env" in command and "-p NoNewPrivileges=yes" in command
    assert "-p WorkingDirectory=/home/ubuntu/QMS/releases/20261202-010000-abc1234/backend" in command
    assert "-p 'ReadWritePaths=/home/ubuntu/QMS/shared/db /home/ubuntu/QMS/shared/media'" in command
    assert "/home/ubuntu/QMS/current/backend/.venv/bin/python" in plan.manage_command(settings(), "check")
    # the shell sees words, never a second command: the ';' stays inside a quoted word
    assert command.endswith("manage.py createsuperuser --username 'a b;' rm -rf / & wait $!")


def test_pending_migrations_from_showmigrations_plan():
    output = "[X]  contenttypes.0001_initial\n[X]  quality.0001_initial\n[ ]  quality.0002_defect_owner\n"
    assert plan.pending_migrations(output) == ["quality.0002_defect_owner"]
    assert plan.pending_migrations("[X]  a.0001\n") == []


def test_env_changes_name_keys_only_and_survive_quoting():
    old = 'A="1"\nB="x \\"q\\" $HOME"\nGONE="z"\n'
    new = 'A="1"\nB="x \\"q\\" $HOME2"\nNEW="y"\n'
    assert plan.env_changes(old, new) == [("B", "changed"), ("GONE", "removed"), ("NEW", "added")]
    assert plan.env_changes(None, 'A="1"\n') == [("A", "added")]
    assert plan.parse_env('K="a\\\\b \\"c\\" $X"\n') == {"K": 'a\\b "c" $X'}


def test_a_python_project_at_the_repository_root_runs_the_app_from_its_venv():
    s = settings(backend={**defaults()["backend"], "python_project": "."})
    assert plan.project_dir(s, "r1") == "/home/ubuntu/QMS/releases/r1"
    assert plan.code_paths(s) == [".", "backend"]
    # the unit runs manage.py's folder (where the app imports from) with the venv at the root
    assert plan.release_links(s) == {"app": "backend", "venv": ".venv"}
    assert plan.manage_command(s, "check", "r1").split()[-6] == "/home/ubuntu/QMS/releases/r1/.venv/bin/python"


def test_the_python_project_fact_and_how_uv_installs_it():
    found = plan.parse_python_project("file=pyproject.toml\nfile=uv.lock\npython=3.11.2\nrequires='>=3.12'\n")
    assert found.files == {"pyproject.toml", "uv.lock"} and found.python == "3.11.2" and found.requires == ">=3.12"
    assert plan.sync_command(found, "/opt/uv/bin/uv") == "/opt/uv/bin/uv sync --locked --no-dev"
    unlocked = plan.parse_python_project("file=pyproject.toml\npython=3.12.3\n")
    assert plan.sync_command(unlocked, "uv") == "uv sync --no-dev" and unlocked.requires == ""
    assert not plan.parse_python_project("file=pyproject.toml\npython=3.12.3\nundeclared=yes\n").declared
    assert found.declared
    requirements = plan.sync_command(plan.parse_python_project("file=requirements.txt\npython=3.12.3\n"), "uv")
    assert "uv venv -q .venv" in requirements and "pip install --python .venv/bin/python -r requirements.txt" in requirements


@pytest.mark.parametrize("version, spec, verdict", [
    ("3.11.2", ">=3.12", False), ("3.12.3", ">=3.12", True), ("3.12.3", ">=3.10,<3.13", True),
    ("3.13.1", ">=3.10, <3.13", False), ("3.12.3", "==3.12.*", True), ("3.11.9", "~=3.11", True),
    ("3.12.0", "~=3.11.2", False), ("3.11.2", "^3.11", None),
])
def test_requires_python_is_compared_with_the_servers_python(version, spec, verdict):
    assert plan.python_satisfies(version, spec) is verdict
