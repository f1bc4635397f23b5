"""Secret masking: values from the secrets file never reach the terminal, even split across writes."""
import io

from tasks.core.secrets import MASK, Masker, MaskingStream, read_dotenv, secret_values_in_env


def test_mask_replaces_every_secret_longest_first():
    m = Masker(["abcd1234", "abcd1234XYZ", "no"])
    assert m.mask("key=abcd1234XYZ other=abcd1234") == f"key={MASK} other={MASK}"
    assert m.mask("no short values are masked") == "no short values are masked"


def test_stream_masks_a_secret_split_across_writes():
    out = io.StringIO()
    stream = MaskingStream(out, Masker(["s3cr3t-value"]))
    for chunk in ("SECRET_KEY=s3c", "r3t-", "value\n", "done s3", "\n"):
        stream.write(chunk)
        stream.flush()
    stream.release()
    assert out.getvalue() == f"SECRET_KEY={MASK}\ndone s3\n"
    assert "s3cr3t" not in out.getvalue()


def test_stream_holds_nothing_back_when_no_secret_can_start():
    out = io.StringIO()
    stream = MaskingStream(out, Masker(["zzzz9999"]))
    stream.write("hello ")
    assert out.getvalue() == "hello "


def test_dotenv_values_survive_special_characters(tmp_path):
    env = tmp_path / "prod.env"
    env.write_text("SECRET_KEY='a$b\"c #d e'\nEMPTY=\nNOVALUE\n")
    assert read_dotenv(env) == {"SECRET_KEY": 'a$b"c #d e', "EMPTY": ""}
    assert read_dotenv(tmp_path / "missing.env") == {}


def test_secret_names_in_the_environment():
    values = secret_values_in_env({"AWS_SECRET_ACCESS_KEY": "x1", "DB_PASSWORD": "x2", "PATH": "/bin",
                                   "SSH_PRIVATE_KEY": "x3", "HOME": "/root"})
    assert sorted(values) == ["x1", "x2", "x3"]


def test_a_terminal_stays_a_terminal_through_the_mask(tmp_path):
    """`fab settings` in a pseudo-terminal 90 columns wide, as a person runs it: rich sees a terminal through the
    masking stream and lays the table out for its width, and the secret in it is still masked."""
    import fcntl
    import os
    import pty
    import re
    import struct
    import subprocess
    import termios

    from tests.standin.harness import REPO, project_exe

    secret = "pty-s3cr3t-4242"
    secrets = tmp_path / "production.env"
    secrets.write_text(f"SECRET_KEY={secret}\n")
    secrets.chmod(0o600)
    conf = tmp_path / "production.yaml"
    conf.write_text(f"qms:\n  secrets_file: {secrets}\n  domains: [qms.example.com]\n"
                    f"  backend:\n    env:\n      PASTED_BY_MISTAKE: {secret}\n")
    main, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 90, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")}
    fab = subprocess.Popen([project_exe("fab"), "-f", str(conf), "settings", "--all"], cwd=REPO, stdin=terminal,
                           stdout=terminal, stderr=terminal, env={**env, "TERM": "xterm-256color"})
    os.close(terminal)
    seen = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:   # the terminal closed: fab is done
            break
        if not chunk:
            break
        seen += chunk
    os.close(main)
    assert fab.wait(timeout=60) == 0, seen.decode(errors="replace")
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode()).replace("\r\n", "\n")
    table = [line for line in shown.splitlines() if line[:1] in "┏┃┡│└"]
    # as wide as the terminal, every line: the secret was masked before the table was laid out (masked after, its
    # row came out shorter, and a secret wrapped across two lines of a cell would not be masked at all)
    assert table and {len(line) for line in table} == {90}, shown
    assert "PASTED_BY_MISTAKE" in shown and MASK in shown and secret not in shown, shown
