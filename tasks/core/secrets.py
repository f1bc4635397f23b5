"""Secrets: read from git-ignored dotenv files, and masked in everything this tool prints."""
from __future__ import annotations

import atexit
import io
import os
import re
import sys
from pathlib import Path
from typing import Iterable, Mapping, Optional

from dotenv import dotenv_values

from .local_files import decode

MASK = "********"
# Environment variables whose values are secret even when they do not come from a secrets file.
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|CREDENTIAL|APIKEY|_KEY$")
MIN_LENGTH = 4   # masking shorter values would garble ordinary output; such secrets are too weak anyway

# The secrets file's keys this tool reads itself. They stay on this machine (the app's process has no use for the
# backup credentials or the superuser's one-time password) unless qms.backend.secret_env names them.
BACKUP_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")   # S3 copies of backups
TOOL_KEYS = (*BACKUP_KEYS, "DJANGO_SUPERUSER_PASSWORD")   # + setup's createsuperuser, once

# Values that are secrets whatever their name, and what they are.
SECRET_VALUES = (
    (re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"), "an AWS access key id"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@"), "a URL with a password"),
    (re.compile(r"\b((sk|rk)_(live|test)_|gh[pousr]_|github_pat_|xox[abpr]-)[A-Za-z0-9_-]{16,}"), "an API token"),
)
# Public by design (STRIPE_PUBLISHABLE_KEY, VAPID_PUBLIC_KEY, RECAPTCHA_SITE_KEY): their name and randomness are fine.
PUBLIC_NAME = re.compile(r"PUBLIC|PUBLISHABLE|SITE_KEY$")
# A secret's name with such a value is a setting about the secret (PASSWORD_MIN_LENGTH: 12, SECRET_KEY_FILE: /run/..).
PLAIN_VALUE = re.compile(r"\d*|true|false|yes|no|on|off|/\S*", re.IGNORECASE)
UUID = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", re.IGNORECASE)   # an id more often than a key


def random_looking(value: str) -> bool:
    """A long generated key: digits, capitals, small letters and symbols change places every few characters.
    Words, hosts, paths, versions, CamelCase and header values do between separators, if at all, and a key without
    a digit or symbol is left to the name rule. Canonical UUIDs are let through."""
    kinds = [_kind(ch) for ch in value]
    changes = sum(1 for a, b in zip(kinds, kinds[1:]) if a != b and a and b)
    return (len(value) >= 24 and not any(ch.isspace() for ch in value) and changes >= len(value) / 6
            and bool({"digit", "symbol"} & set(kinds)) and not UUID.fullmatch(value))


def _kind(ch: str) -> str:
    """The class of a character; separators belong to none, so that a change across one does not count."""
    if ch.isdigit():
        return "digit"
    if ch.isalpha():
        return "upper" if ch.isupper() else "lower"
    return "" if ch in "-_./:@,;=+ " else "symbol"


def why_secret(name: str, value: str) -> Optional[str]:
    """Why a plain (committed) setting NAME: value looks like a secret, or None. Errs towards refusing: moving a
    value to the secrets file costs nothing, a key pushed to git stays in its history."""
    for pattern, what in SECRET_VALUES:
        if pattern.search(value):
            return f"its value is {what}"
    if PUBLIC_NAME.search(name.upper()):
        return None
    if SECRET_NAME.search(name.upper()) and not PLAIN_VALUE.fullmatch(value.strip()):
        return "its name says it is"
    if random_looking(value):
        return "its value looks like a generated key"
    return None


def read_dotenv(path: Path) -> dict[str, str]:
    """Key -> value of a dotenv file ({} when it does not exist); keys without a value are left out."""
    if not path.is_file():
        return {}
    text = decode(path.read_bytes(), path)
    return {k: v for k, v in dotenv_values(stream=io.StringIO(text)).items() if v is not None}


def secret_values_in_env(environ: Mapping[str, str]) -> list[str]:
    return [value for name, value in environ.items() if SECRET_NAME.search(name.upper())]


class Masker:
    """Replaces known secret values with ********, longest first so that overlapping values hide fully."""

    def __init__(self, values: Iterable[str] = ()):
        self.values: list[str] = []
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        fresh = {v for v in values if isinstance(v, str) and len(v) >= MIN_LENGTH}
        self.values = sorted(set(self.values) | fresh, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for value in self.values:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def split_tail(self, text: str) -> tuple[str, str]:
        """(safe, held): `held` is the longest end of `text` that could be the start of a secret."""
        longest = 0
        for value in self.values:
            for size in range(min(len(value) - 1, len(text)), longest, -1):
                if text.endswith(value[:size]):
                    longest = size
                    break
        return (text[:-longest], text[-longest:]) if longest else (text, "")


class MaskingStream(io.TextIOBase):
    """A text stream that masks secrets, even when a secret arrives split across two writes."""

    def __init__(self, stream, masker: Masker):
        self.stream = stream
        self.masker = masker
        self.held = ""

    def write(self, text: str) -> int:
        masked = self.masker.mask(self.held + text)
        safe, self.held = self.masker.split_tail(masked)
        if "\n" in self.held:          # a line end cannot sit inside a secret we would hold back for
            safe, self.held = safe + self.held, ""
        if safe:
            self.stream.write(safe)
        return len(text)

    def flush(self) -> None:
        # Invoke flushes after every chunk, so a held-back tail stays held until more text or the end.
        self.stream.flush()

    def release(self) -> None:
        if self.held:
            self.stream.write(self.masker.mask(self.held))
            self.held = ""
        self.stream.flush()

    # io.TextIOBase has its own isatty (False), fileno (refused) and encoding (None), so __getattr__ never runs for
    # them: a terminal must stay one (rich lays tables out for its width, the upload shows its progress bar)
    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self):
        return self.stream.encoding

    @property
    def errors(self):
        return self.stream.errors

    def __getattr__(self, name):      # buffer, and whatever else callers look up
        return getattr(self.stream, name)


def mask_now(text: str) -> str:
    """`text` masked as printing it would mask it: for text that is laid out before it is printed (a table cell
    wrapped over two lines would split a secret where the stream can no longer see it)."""
    return sys.stdout.masker.mask(text) if isinstance(sys.stdout, MaskingStream) else text


def install_masking(masker: Masker) -> None:
    """Route sys.stdout and sys.stderr through `masker`: Invoke's echo, command output, our messages, errors."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, MaskingStream):
            stream.masker = masker
        else:
            wrapped = MaskingStream(stream, masker)
            setattr(sys, name, wrapped)
            atexit.register(wrapped.release)


def masker_for(secrets: Mapping[str, str]) -> Masker:
    return Masker([*secrets.values(), *secret_values_in_env(os.environ)])
