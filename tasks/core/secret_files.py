"""Which files must never reach git (guide section 10: a rewritten .gitignore nearly let .env, *.pem, *.sqlite3,
backups/ and a stray `null` file in). Pure: paths and patterns in, offences out."""
from __future__ import annotations

import fnmatch

SAMPLE = "qms-check"


def offence(path: str, patterns: list[str], allowed: list[str]) -> str | None:
    """The pattern `path` (a git path, with /) matches, or None. `name/` patterns match a directory anywhere."""
    parts = path.split("/")
    name = parts[-1]
    if any(fnmatch.fnmatchcase(name, a) for a in allowed):
        return None
    for pattern in patterns:
        if pattern.endswith("/"):
            if any(fnmatch.fnmatchcase(part, pattern[:-1]) for part in parts[:-1]):
                return pattern
        elif fnmatch.fnmatchcase(name, pattern):
            return pattern
    return None


def sample_path(pattern: str) -> str:
    """A path that .gitignore must ignore for `pattern` to be covered, for `git check-ignore`."""
    if pattern.endswith("/"):
        return pattern.replace("*", SAMPLE) + SAMPLE
    return pattern.replace("*", SAMPLE)
