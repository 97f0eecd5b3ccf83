"""Secrets scrubbing of statement texts, before anything read from a target is stored.

pg_stat_statements keeps utility statements verbatim and pg_stat_activity shows the running
text, so a target's ``ALTER ROLE ... PASSWORD '...'`` would otherwise reach the repository, the
reports and the app. :func:`scrub` replaces what is secret by ``<redacted>``:

- the string after a ``PASSWORD`` keyword or option name: CREATE/ALTER ROLE/USER ... [ENCRYPTED]
  PASSWORD '...', user mappings (postgres_fdw, dblink_fdw) ``OPTIONS (password '...')`` and
  ``ALTER USER MAPPING ... OPTIONS (SET password '...')``;
- inside any string literal: a conninfo ``password=`` / ``sslpassword=`` value (dblink_connect,
  dblink, CREATE/ALTER SUBSCRIPTION ... CONNECTION, primary_conninfo) and the password of a
  connection URL (``postgresql://user:secret@host``).

The statement is tokenized with PostgreSQL's own scanner (pglast), so quoting, E'' strings,
dollar quotes and comments are understood. A text the scanner refuses (an ASH text truncated in
the middle of a literal, a malformed statement) falls back to conservative patterns that redact
to the end of the text when a secret's end cannot be told. The same patterns exist in SQL as
``opscore.scrub_secrets(text)`` (migration 0009) for what older repositories already hold.
"""

from __future__ import annotations

import re

from pglast.parser import ParseError, scan

REDACTED = "<redacted>"

# cheap test first: most statements mention no password and no URL with a user:password part
_TRIGGER = re.compile(r"password|://[^\s/@]*:[^\s@]*@", re.IGNORECASE)
_PASSWORD_WORDS = {"password", "sslpassword"}

# in a decoded conninfo or URL: a password value, quoted ('...' with \\ escapes) or up to a blank
_CONNINFO_PW = re.compile(
    r"\b(?:ssl)?password\s*=(?!>)\s*('(?:\\.|[^'\\])*(?:'|$)|(?:\\.|[^\s\\])+)", re.IGNORECASE
)
_URL_PW = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/@:']*:([^\s@']*)@", re.IGNORECASE)

# fallback (text the scanner refuses): PASSWORD followed by a literal, possibly unterminated
_KEYWORD_PW = re.compile(
    r"""(\b(?:ssl)?password"?(?:\s|/\*.*?\*/|--[^\n]*(?:\n|$)|=>?)+)(?:[eE]?'(?:[^'\\]|''|\\.)*(?:'|$)"""
    r"""|(\$[A-Za-z_0-9]*\$)(?:.*?\2|.*$))""",
    re.IGNORECASE | re.DOTALL,
)


def _decode(body: str, kind: str) -> tuple[str, list[int]]:
    """The characters a literal's body stands for, and where each starts in ``body``.

    ``kind``: "std" ('' is a quote), "e" (E'' string: backslash escapes too) or "dollar".
    """
    chars: list[str] = []
    offsets: list[int] = []
    i = 0
    while i < len(body):
        offsets.append(i)
        if kind != "dollar" and body.startswith("''", i):
            chars.append("'")
            i += 2
        elif kind == "e" and body[i] == "\\" and i + 1 < len(body):
            chars.append(body[i + 1])
            i += 2
        else:
            chars.append(body[i])
            i += 1
    offsets.append(len(body))
    return "".join(chars), offsets


def _scrub_literal_body(body: str, kind: str = "std") -> str:
    """``body`` (as written in SQL) with conninfo and URL passwords replaced."""
    decoded, offsets = _decode(body, kind)
    spans = [m.span(1) for m in _CONNINFO_PW.finditer(decoded)]
    spans += [m.span(1) for m in _URL_PW.finditer(decoded)]
    for a, b in sorted(spans, reverse=True):
        body = body[: offsets[a]] + REDACTED + body[offsets[b] :]
    return body


def _literal(token_text: str) -> tuple[str, str, str, str]:
    """Split a string constant into (opening, body, closing, kind)."""
    if token_text.startswith("$"):
        tag = token_text[: token_text.index("$", 1) + 1]
        return tag, token_text[len(tag) : -len(tag)], tag, "dollar"
    opening = token_text[: token_text.index("'") + 1]
    kind = "e" if opening[:1] in ("e", "E") else "std"
    return opening, token_text[len(opening) : -1], "'", kind


def _fallback(text: str) -> str:
    out = _KEYWORD_PW.sub(lambda m: m.group(1) + f"'{REDACTED}'", text)
    return _scrub_literal_body(out, "e")


def _names_password(words: list[str]) -> bool:
    """The tokens before a literal name a password: ``PASSWORD 'x'``, ``"password" 'x'``,
    ``password => 'x'`` or ``password = 'x'``."""
    if words and words[-1] in ("=>", "=", ":="):
        words = words[:-1]
    return bool(words) and words[-1].strip('"').lower() in _PASSWORD_WORDS


def _scanned(text: str) -> str:
    pieces: list[str] = []
    pos = 0
    seen: list[str] = []
    for tok in scan(text):  # character offsets, end inclusive
        if tok.name in ("C_COMMENT", "SQL_COMMENT"):
            continue
        start, end = tok.start, tok.end + 1
        word = text[start:end]
        replacement = None
        if tok.name in ("SCONST", "USCONST"):
            opening, body, closing, kind = _literal(word)
            if _names_password(seen[-2:]):
                replacement = f"'{REDACTED}'"
            elif _TRIGGER.search(body):
                scrubbed = _scrub_literal_body(body, kind)
                if scrubbed != body:
                    replacement = opening + scrubbed + closing
        if replacement is not None:
            pieces += [text[pos:start], replacement]
            pos = end
        seen = [*seen[-1:], word]
    pieces.append(text[pos:])
    return "".join(pieces)


def scrub(text: str | None) -> str | None:
    """``text`` (a SQL statement) with passwords replaced by ``<redacted>`` (unchanged when it
    holds none)."""
    if not text or not _TRIGGER.search(text):
        return text
    try:
        out = _scanned(text)
    except (ParseError, ValueError, IndexError):
        return _fallback(text)
    # a password word followed by something the token rule did not see as a literal (an
    # identifier, a comment in between): the conservative patterns run over the result as well
    if _KEYWORD_PW.search(out.replace(f"'{REDACTED}'", "")):
        out = _fallback(out)
    # a URL with a password in a comment (outside any literal)
    return _URL_PW.sub(lambda m: m.group(0).replace(m.group(1), REDACTED, 1), out)


def scrub_message(text: str | None) -> str | None:
    """Any text (an error message, a log line): conninfo and URL passwords and PASSWORD
    literals redacted by the conservative patterns."""
    if not text or not _TRIGGER.search(text):
        return text
    return _fallback(text)
