"""Values that go into an upstream URL: checked against what OpenRouter ids look like, then encoded.

A tool argument pasted into a path can walk it (`../key#` turns a catalog lookup into an
authenticated `GET /key`), so every caller-supplied path segment passes `path_segment` and every
query value `query_value` before a request is built. Both refuse rather than repair: a value that
cannot be an OpenRouter id is the caller's mistake, and they say so before anything is sent.

Pure: no httpx, so the rules are tested directly.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

#: One segment of a model id (`author` or `slug`, a variant such as `:free` included): letters, digits and
#: `._~:+-`, starting with a letter, digit or `~` (OpenRouter's aliases). This leaves out `/`, `?`, `#`, `%`
#: (so no encoded separators), `\`, spaces and control characters, and `.`/`..` cannot be a whole segment.
SEGMENT = re.compile(r"[A-Za-z0-9~][A-Za-z0-9._~:+-]{0,127}")
#: A generation id (`gen-...`): letters, digits and `_.:-`.
GENERATION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,255}")
#: Longest query value we send. OpenRouter's filters are short lists of names; a megabyte query is a mistake
#: that the HTTP stack would otherwise refuse with an unreadable error (or a proxy with a 414).
MAX_QUERY_VALUE = 2048


class UnsafeUrlValueError(ValueError):
    """A value that would change the meaning of an upstream URL; its message says which and why."""


def path_segment(name: str, value: str) -> str:
    """`value` as one encoded path segment.

    Raises:
        UnsafeUrlValueError: `value` is not one segment of an OpenRouter id.
    """
    if not isinstance(value, str) or not SEGMENT.fullmatch(value):
        raise UnsafeUrlValueError(
            f"{name} must be one segment of an OpenRouter model id (letters, digits and ._~:+-, such as "
            f"'openai' or 'gpt-4o:free'), got {_shown(value)}"
        )
    # Every allowed character is unreserved or a sub-delimiter, so this changes nothing today; it keeps the
    # segment encoded should the pattern above ever widen.
    return quote(value, safe="~:+-._")


def model_path(model_id: str) -> str:
    """`author/slug` of `model_id`, each segment checked and encoded, for `/models/{author}/{slug}/...`.

    Raises:
        UnsafeUrlValueError: `model_id` is not `author/slug` with safe segments.
    """
    author, _, slug = model_id.partition("/") if isinstance(model_id, str) else ("", "", "")
    if not (SEGMENT.fullmatch(author) and SEGMENT.fullmatch(slug)):
        raise UnsafeUrlValueError(
            "model must be an id 'author/slug' such as 'openai/gpt-4o' or 'meta-llama/llama-3.1-8b-instruct:free' "
            f"(letters, digits and ._~:+- in each part), got {_shown(model_id)}"
        )
    return f"{path_segment('author', author)}/{path_segment('slug', slug)}"


def generation_id(value: str) -> str:
    """`value` if it can be a generation id (it travels as a query value, which the HTTP client encodes).

    Raises:
        UnsafeUrlValueError: `value` has characters no generation id has.
    """
    if not isinstance(value, str) or not GENERATION_ID.fullmatch(value):
        raise UnsafeUrlValueError(
            f"id must be a generation id such as 'gen-1234-abcd' (letters, digits and _.:-), got {_shown(value)}"
        )
    return value


def query_value(name: str, value: Any) -> str:
    """`value` as the text of a query value (the HTTP client percent-encodes it): lists comma-separated, as
    OpenRouter's filters take them, booleans as `true`/`false`.

    Raises:
        UnsafeUrlValueError: too long, or holding control characters.
    """
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list | tuple):
        text = ",".join(str(item) for item in value)
    else:
        text = str(value)
    if len(text) > MAX_QUERY_VALUE:
        raise UnsafeUrlValueError(f"{name} is {len(text)} characters long; at most {MAX_QUERY_VALUE} are accepted")
    if any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in text):
        raise UnsafeUrlValueError(f"{name} contains control characters: {_shown(text)}")
    return text


def _shown(value: object) -> str:
    """A short, printable rendering of a rejected value (it may be huge or hold control characters)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
