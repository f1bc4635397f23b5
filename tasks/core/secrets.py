"""Secrets: read from git-ignored dotenv files, and masked in everything this tool prints."""
from __future__ import annotations

import atexit
import io
import os
import re
import sys
from pathlib import Path
from typing import Iterable, Mapping

from dotenv import dotenv_values

from .local_files import decode

MASK = "********"
# Environment variables whose values are secret even when they do not come from a secrets file.
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|CREDENTIAL|_KEY$")
MIN_LENGTH = 4   # masking shorter values would garble ordinary output; such secrets are too weak anyway


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
