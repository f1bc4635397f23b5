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
