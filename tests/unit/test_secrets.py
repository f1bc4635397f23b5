"""Secret masking: values from the secrets file never reach the terminal, even split across writes."""
import io
import re
import secrets

import pytest

from tasks.core.secrets import MASK, TOOL_KEYS, Masker, MaskingStream, read_dotenv, secret_values_in_env, why_secret
from tasks.core.settings import PROJECT_ROOT


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


@pytest.mark.parametrize("name, value, why", [
    ("EMAIL_HOST_PASSWORD", "hunter22", "its name says it is"),
    ("STRIPE_SECRET_KEY", "anything", "its name says it is"),
    ("SENTRY_AUTH_TOKEN", "abc", "its name says it is"),
    ("SIGNING_KEY", "plain words", "its name says it is"),
    ("GOOGLE_APIKEY", "x-y-z", "its name says it is"),
    ("OAUTH_CREDENTIALS", "{}", "its name says it is"),
    ("S3_ID", "AKIAIOSFODNN7EXAMPLE", "its value is an AWS access key id"),
    ("DATABASE_URL", "postgres://qms:s3cret@db.internal:5432/qms", "its value is a URL with a password"),
    ("CACHE_URL", "redis://:s3cret@127.0.0.1:6379/0", "its value is a URL with a password"),
    ("PUBLIC_CERT", "-----BEGIN RSA PRIVATE KEY-----\nMIIE", "its value is a private key"),
    ("PAYMENTS", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "its value is an API token"),
    ("GH", "ghp_16C7e42F292c6912E7710c838347Ae178B4a", "its value is an API token"),
    ("FIELD_SALT", "k3enire%+^v(+suwq_*s=fhypx=fxdup@q5b%y%w=p#=@f8oj8", "its value looks like a generated key"),
    ("SLACK_WEBHOOK", "https://hooks.slack.com/services/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",
     "its value looks like a generated key"),
    ("FIELD_SALT", secrets.token_hex(32), "its value looks like a generated key"),
    # public by design, settings about a secret, and ordinary values
    ("STRIPE_PUBLISHABLE_KEY", "pk_live_51H8abcDEF123ghiJKL456mnoPQR789", None),
    ("VAPID_PUBLIC_KEY", "BEl62iUYgUivxIkv69yViEuiBIa-Ib9-SkvMeAtA3LFgDzkrxZJjSgSnfckjBJuBkr3qBUYIHBQFLXYp5Nksh8U", None),
    ("RECAPTCHA_SITE_KEY", "6LeIxAcTAAAAAJcZVRqyHh71UMIEGNQ_MXjiZKhI", None),
    ("PASSWORD_MIN_LENGTH", "12", None),
    ("JWT_ACCESS_TOKEN_LIFETIME", "300", None),
    ("SESSION_COOKIE_SECURE", "true", None),
    ("SECRET_KEY_FILE", "/run/credentials/qms-backend/secret_key", None),
    ("EMAIL_HOST_PASSWORD", "", None),
    ("DATABASE_URL", "postgres://qms@db.internal:5432/qms", None),
    ("DJANGO_SETTINGS_MODULE", "backend.settings.production", None),
    ("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend", None),
    ("TENANT_ID", "3771fa90-3f9d-4274-b473-279c7a9ce5f2", None),
    ("APP_VERSION", "v2.3.4-rc1+build.20240501.abcdef1", None),
    ("ACCEPT_LANGUAGE", "ko-KR,en-US;q=0.9,en;q=0.8", None),
    ("BUCKET", "myproject-production-bucket-2024", None),
    ("SENTRY_DSN", "https://o123456.ingest.sentry.io/4504123456789", None),
    ("TIME_ZONE", "Asia/Seoul", None),
])
def test_what_looks_secret_in_committed_settings(name, value, why):
    assert why_secret(name, value) == why


def test_every_secret_the_tool_reads_for_itself_is_a_tool_key():
    """A key the tool reads (s.secrets[...] / .get(...) anywhere in tasks/) must be in TOOL_KEYS, or the server's
    .env would get it as if it were the app's; SECRET_KEY is the app's, read through backend_plan.secret."""
    read = set()
    for path in (PROJECT_ROOT / "tasks").rglob("*.py"):
        read |= set(re.findall(r'secrets(?:\[|\.get\()"(\w+)"', path.read_text()))
    assert read and read <= set(TOOL_KEYS), read - set(TOOL_KEYS)


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
