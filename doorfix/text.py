"""Vendor text made safe to show: on a terminal or in a text file, and inside markdown.

A door or a person's name is data a vendor (or whoever typed it there) controls. On a terminal
an ``ESC`` starts a sequence that recolours, retitles the window or worse; a bidi override
(U+202E) makes text read backwards. :func:`printable` shows every such character as a visible
escape (``\\x1b``, ``\\u202e``) instead. In markdown a name could become a link, an image or
HTML: :func:`markdown_text` escapes markdown and HTML meta-characters and defangs URLs.
"""

from __future__ import annotations

import re
import unicodedata

#: bidi embedding, override and isolate controls, and the marks that steer them
BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

#: markdown meta-characters; ``_`` only where it can open or close emphasis (not in a word)
_MARKDOWN = re.compile(r"([\\`*{}\[\]()#+!|~]|(?<!\w)_|_(?!\w))")
_URL = re.compile(r"(?i)(://|\bwww\.)")


def _visible(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _unsafe(char: str, keep_newlines: bool) -> bool:
    if char in BIDI:
        return True
    if keep_newlines and char in "\n\t":
        return False
    return unicodedata.category(char) == "Cc"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with C0/C1 control characters and bidi controls shown as escapes.

    ``keep_newlines`` keeps line feeds and tabs (a multi-line message of our own).
    """
    if text.isprintable() and not BIDI.intersection(text):
        return text
    return "".join(_visible(c) if _unsafe(c, keep_newlines) else c for c in text)


def markdown_text(text: str) -> str:
    """``text`` for a markdown document: printable, no markup, no HTML, no link."""
    out = printable(text)
    out = out.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    out = _MARKDOWN.sub(r"\\\1", out)
    # a bare URL becomes a link in most renderers whatever is escaped: defang it visibly
    return _URL.sub(lambda m: "[:]//" if m.group(1) == "://" else m.group(1)[:3] + "[.]", out)
