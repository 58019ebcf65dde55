"""Key rules: a key is a relative path that can never leave its container."""

from __future__ import annotations

import re

from components.storage.protocol import InvalidKey

MAX_KEY_LENGTH = 1024
_ALLOWED = re.compile(r"^[A-Za-z0-9._\-+=@,/ ]+$")


def check_key(key: str, what: str = "key") -> str:
    """Return ``key`` if it is a safe relative path, else raise :class:`InvalidKey`.

    Allowed: 1–1024 characters from ``A–Z a–z 0–9 . _ - + = @ , / space``; no empty,
    ``.`` or ``..`` segment; no leading or trailing ``/``.
    """
    if not isinstance(key, str) or not key:
        raise InvalidKey(f"{what} must be a non-empty string, got {key!r}")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"{what} is {len(key)} characters long; at most {MAX_KEY_LENGTH}")
    if not _ALLOWED.match(key):
        raise InvalidKey(
            f"{what} {key!r} has a character outside A-Z a-z 0-9 . _ - + = @ , / and space"
        )
    if key.startswith("/"):
        raise InvalidKey(f"{what} {key!r} is absolute; keys are relative paths")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise InvalidKey(f"{what} {key!r} has an empty, '.' or '..' segment")
    return key
