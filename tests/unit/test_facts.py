"""Facts are data: recorded command output in, state out; operations follow from the difference."""
import pytest

from tasks.core import facts
from tasks.core.facts import PathState


def test_parse_missing_and_present_paths():
    assert facts.parse_path_state("missing\n") is None
    state = facts.parse_path_state("directory|750|ubuntu|ubuntu|4096\n")
    assert state == PathState("directory", 0o750, "ubuntu", "ubuntu", 4096) and state.is_dir
    f = facts.parse_path_state("regular file|600|root|root|12\n" + "ab" * 32 + "  /x/.env\n")
    assert f.is_file and f.mode == 0o600 and f.sha256 == "ab" * 32


def test_dir_commands_only_for_differences():
    want = ("/srv/x", 0o755, "ubuntu", "ubuntu")
    assert facts.dir_commands(None, *want) == ["install -d -m 0755 -o ubuntu -g ubuntu -- /srv/x"]
    assert facts.dir_commands(PathState("directory", 0o755, "ubuntu", "ubuntu", 0), *want) == []
    assert facts.dir_commands(PathState("directory", 0o700, "root", "root", 0), *want) == [
        "chown ubuntu:ubuntu -- /srv/x", "chmod 0755 -- /srv/x"]
    with pytest.raises(ValueError, match="is a regular file, not a directory"):
        facts.dir_commands(PathState("regular file", 0o644, "u", "u", 1), *want)


def test_paths_with_spaces_are_quoted():
    assert "'/srv/my app'" in facts.path_state_command("/srv/my app")
    assert facts.dir_commands(None, "/srv/a b", 0o755, "u", "g")[0].endswith("-- '/srv/a b'")


def test_text_diff_and_binary_summary():
    diff = facts.text_diff(b"a\nb\n", b"a\nc\n", "/etc/x")
    assert "-b\n" in diff and "+c\n" in diff and "/etc/x (server)" in diff
    assert facts.text_diff(b"\xff\x00", b"\xfe", "/bin/x") == "binary content differs (2 -> 1 bytes)\n"


def test_key_values_and_status_command():
    assert facts.parse_key_values("os=Debian GNU/Linux 12\nnoise\nnginx=active\n") == {
        "os": "Debian GNU/Linux 12", "nginx": "active"}
    command = facts.server_status_command("/home/ubuntu/QMS", "qms-backend")
    assert "readlink /home/ubuntu/QMS/current" in command and 'systemctl is-active qms-backend@"$release"' in command


def test_installed_packages_from_dpkg_query():
    from tasks.core.facts import installed_packages_command, parse_installed_packages
    output = "nginx ii \ncertbot ii \njq un \nlibc6:amd64 ii \ncurl rc \n"
    assert parse_installed_packages(output) == {"nginx", "certbot", "libc6"}
    assert "'jq'" not in installed_packages_command(["jq"]) and installed_packages_command(["a b"]).endswith(
        "'a b' 2>/dev/null")


def test_a_backend_instances_state_in_one_round_trip():
    command = facts.instance_state_command("qms-backend@r1", "/run/qms-backend/r1.sock", "/api/health/")
    assert "systemctl is-active qms-backend@r1.service" in command
    assert "--unix-socket /run/qms-backend/r1.sock" in command and "http://127.0.0.1/api/health/" in command
    # captured on the stand-in: running, two workers, healthy
    up = facts.parse_instance_state("active=active\nworkers=4012 4013 \nhealth=200\n")
    assert up == facts.InstanceState("active", frozenset({"4012", "4013"}), "200")
    # starting: no main process yet, curl could not connect
    starting = facts.parse_instance_state("active=activating\nworkers=\nhealth=000\n")
    assert starting.active == "activating" and not starting.workers and starting.health == ""
    assert facts.parse_instance_state("").active == "unknown"
