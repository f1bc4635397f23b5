"""The command line as a user meets it, without a server: task list, help, settings mistakes."""
import subprocess

import pytest

from tasks import ns
from tests.conftest import REPO, assert_one_line_error, fab, run_tool


@pytest.mark.parametrize("tool", ["fab", "inv"])
def test_list_shows_every_task_with_a_summary(tool):
    result = run_tool(tool, "--list")
    assert result.returncode == 0, result.stderr
    for name in ns.task_names:
        line = next((line for line in result.stdout.splitlines() if line.strip().startswith(name + " ")), "")
        assert len(line.split()) > 1, f"{name} has no summary in {tool} --list"


def test_every_task_documents_every_argument():
    for name, body in ns.tasks.items():
        assert body.__doc__ and body.__doc__.strip(), name
        for arg in body.get_arguments():
            assert arg.help, f"{name} --{arg.name} has no help"


def test_readme_names_every_task():
    readme = (REPO / "README.md").read_text()
    for name in ns.task_names:
        assert f"`{name}`" in readme, f"README.md does not mention `{name}`"


def test_settings_of_each_committed_environment_are_valid():
    for conf in sorted((REPO / "conf").glob("*.yaml")):
        result = fab("-f", conf.relative_to(REPO), "settings")
        assert result.returncode == 0, result.stderr
        assert "settings ok" in result.stdout


def test_unknown_key_names_key_and_file(write_conf):
    conf = write_conf("qms:\n  backend:\n    wrokers: 3\n")
    assert_one_line_error(fab("-f", conf, "settings"), str(conf), "unknown setting qms.backend.wrokers",
                          "did you mean qms.backend.workers?")


def test_wrong_type_names_key_file_and_expectation(write_conf):
    conf = write_conf("qms:\n  backend:\n    workers: eighty\n")
    assert_one_line_error(fab("-f", conf, "settings"), str(conf), "qms.backend.workers must be an integer from 2 to 16")


def test_a_branch_that_git_would_take_for_an_option_is_refused(write_conf):
    conf = write_conf("qms:\n  branch: --upload-pack=touch /tmp/qms-pwned\n")
    assert_one_line_error(fab("-f", conf, "settings"), str(conf), "qms.branch must be a git name without a leading -")


@pytest.mark.parametrize("value, problem", [("conf/{environment}.env", "({environment} is unknown)"),
                                            ("conf/{env.env", "and {{ and }} for a literal brace")])
def test_an_unknown_placeholder_in_the_secrets_file_names_it_and_the_known_ones(write_conf, value, problem):
    conf = write_conf(f"qms:\n  secrets_file: '{value}'\n")
    assert_one_line_error(fab("-f", conf, "settings"), str(conf), "qms.secrets_file must be a value with no "
                          "placeholder but {env}", problem, repr(value))


def test_unknown_top_level_key(write_conf):
    conf = write_conf("qsm:\n  host: x\n")
    assert_one_line_error(fab("-f", conf, "settings"), "unknown top-level key qsm: did you mean qms?")


def test_yaml_syntax_error_is_one_line(write_conf):
    conf = write_conf("qms:\n  host: [unclosed\n  user: x\n")
    assert_one_line_error(fab("-f", conf, "settings"), str(conf), "not valid YAML")


def test_missing_settings_file():
    assert_one_line_error(fab("-f", "conf/prodution.yaml", "settings"), "settings file conf/prodution.yaml not found")


def test_missing_required_value_names_what_needs_it(write_conf):
    conf = write_conf("qms:\n  domains: [qms.example.com]\n")
    assert_one_line_error(fab("-f", conf, "status"), str(conf), "qms.host is not set", "(or pass -H)")


def test_secret_values_are_masked_in_settings_output_which_says_where_each_key_goes(write_conf, tmp_path):
    (tmp_path / "secrets.env").write_text("SECRET_KEY=very-secret-value-123\nAWS_ACCESS_KEY_ID=AKIA-not-real-1234\n")
    conf = write_conf(f"qms:\n  secrets_file: {tmp_path / 'secrets.env'}\n  host: x\n")
    result = fab("-f", conf, "settings")
    assert result.returncode == 0, result.stderr
    assert "SECRET_KEY=********  (server's .env)" in result.stdout
    assert "AWS_ACCESS_KEY_ID=********  (this machine only: the tool's own)" in result.stdout
    assert "very-secret-value-123" not in result.stdout + result.stderr and "AKIA-not" not in result.stdout


def test_a_secret_in_the_committed_settings_is_refused_before_connecting_and_never_shown(write_conf):
    conf = write_conf("qms:\n  host: nowhere.invalid\n  backend:\n    env:\n"
                      "      STRIPE_API_KEY: sk_live_4eC39HqLyjWDarjtT1zdp7dc\n", name="production.yaml")
    for task in ("settings", "env", "deploy"):
        line = assert_one_line_error(fab("-f", conf, task), f"{conf}: qms.backend.env.STRIPE_API_KEY looks like a "
                                     "secret (its value is an API token): move it to conf/production.env")
        assert "4eC39" not in line


def test_the_korean_quickstart_names_only_real_tasks():
    import re
    text = (REPO / "README.ko.md").read_text()
    named = set(re.findall(r"(?:fab|inv) -f conf[\\/]\S+ ([a-z-]+)", text)) | set(re.findall(r"`([a-z][a-z-]+)`", text))
    unknown = {name for name in named if name not in ns.task_names and not name.startswith(("fab", "inv"))}
    assert named & set(ns.task_names) and not unknown, unknown


def test_a_secrets_file_others_can_read_is_named_with_the_fix(write_conf, tmp_path):
    secrets = tmp_path / "secrets.env"
    secrets.write_text("SECRET_KEY=very-secret-value-123\n")
    secrets.chmod(0o644)
    conf = write_conf(f"qms:\n  secrets_file: {secrets}\n  host: x\n")
    result = fab("-f", conf, "settings")
    assert result.returncode == 0
    assert f"warning: {secrets} can be read by other users: chmod 600 {secrets}" in result.stderr
    secrets.chmod(0o600)
    assert "warning" not in fab("-f", conf, "settings").stderr


def test_deploy_and_setup_check_the_secrets_before_connecting(write_conf, tmp_path):
    secrets = tmp_path / "secrets.env"
    secrets.write_text("AWS_ACCESS_KEY_ID=x\n")
    secrets.chmod(0o600)
    conf = write_conf(f"qms:\n  secrets_file: {secrets}\n  host: nowhere.invalid\n  domains: [qms.example.com]\n")
    for task in ("deploy", "setup"):
        assert_one_line_error(fab("-f", conf, task), "SECRET_KEY is missing from", str(secrets))
    secrets.write_text("SECRET_KEY=k-0123456789abcdefghijklmnopqrstuvwxyz0123456789\n")
    assert_one_line_error(fab("-f", conf, "setup"), "DJANGO_SUPERUSER_PASSWORD is missing", "qms.setup.superuser: ''")


def test_deploy_refuses_a_repository_that_tracks_secrets_before_connecting(write_conf, tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    git = lambda *args: subprocess.run(["git", "-C", str(app), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                                       check=True, capture_output=True)
    git("init", "-q", "-b", "main")
    (app / ".env").write_text("SECRET_KEY=committed-by-mistake\n")
    git("add", ".env")
    git("commit", "-q", "-m", "oops")
    secrets = tmp_path / "secrets.env"
    secrets.write_text("SECRET_KEY=k-0123456789abcdefghijklmnopqrstuvwxyz0123456789\n")
    secrets.chmod(0o600)
    conf = write_conf(f"qms:\n  secrets_file: {secrets}\n  host: nowhere.invalid\n  domains: [qms.example.com]\n"
                      f"  app_dir: {app}\n")
    result = fab("-f", conf, "deploy")
    assert "check-secrets: git holds .env (matches .env): git rm --cached '.env'" in result.stdout
    assert_one_line_error(result, "secret-file problem(s), listed above: fix them before deploying")


def test_a_server_that_drops_packets_is_given_up_on_in_one_line(write_conf):
    """A listener whose accept queue is full drops every new SYN without a word, as a firewalled VPS does."""
    import socket
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    queued = []
    for _ in range(3):
        client = socket.socket()
        client.setblocking(False)
        client.connect_ex(("127.0.0.1", port))
        queued.append(client)
    conf = write_conf(f"qms:\n  host: 127.0.0.1:{port}\n")
    try:
        result = fab("-f", conf, "status", timeout=90)   # the system's own TCP timeout is over two minutes
    finally:
        for s in queued + [server]:
            s.close()
    assert_one_line_error(result, f"cannot reach 127.0.0.1 (127.0.0.1:{port})", "timed out")


def test_a_bug_is_one_line_naming_the_step_and_the_file_with_the_traceback(tmp_path):
    from tasks.core.errors import report_unexpected
    try:
        {}["missing"]
    except KeyError as e:
        e.qms_step = "deps"
        line = report_unexpected(type(e), e, e.__traceback__, logs=tmp_path, mask=lambda t: t.replace("missing", "*"))
    assert line.startswith("error: unexpected KeyError in step deps: '*' (a bug in qms-deploy: the traceback is in ")
    assert "\n" not in line and "--debug shows it here" in line
    logged = next(tmp_path.iterdir()).read_text()
    assert "Traceback" in logged and 'in test_a_bug' in logged and "missing" not in logged   # masked
