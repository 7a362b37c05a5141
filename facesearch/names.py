"""Validating person names, which come from folder names or ``--name``."""

from __future__ import annotations

import unicodedata

from .errors import InputError

MAX_NAME_LENGTH = 128
# Control, format (zero-width, bidi overrides), surrogate, private-use and unassigned characters
# make names that look alike but differ, or that reorder text in a terminal.
_FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}


def validate_name(raw: str) -> str:
    """Return the NFC-normalised, trimmed name, or raise InputError saying what is wrong.

    Letters of any script, digits, spaces and punctuation are fine ("Zoë Saldaña", "李雷");
    path separators, "." and "..", and invisible or control characters are not.
    """
    name = unicodedata.normalize("NFC", raw).strip()
    if not name:
        raise InputError("person name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InputError(f"person name is longer than {MAX_NAME_LENGTH} characters")
    if "/" in name or "\\" in name:
        raise InputError(f"person name {raw!r} contains a path separator")
    if name in (".", "..") or name.startswith(".."):
        raise InputError(f"person name {raw!r} is not allowed (looks like a relative path)")
    for ch in name:
        if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES:
            raise InputError(
                f"person name {raw!r} contains an invisible or control character "
                f"U+{ord(ch):04X} ({unicodedata.name(ch, 'unnamed')})"
            )
    return name
