"""Text from outside (URLs, run ids, model names, error messages) shown literally inside Streamlit markdown."""

from __future__ import annotations

import re

# what forms links, images, HTML, code, emphasis, strikethrough, tables and math anywhere in a line ([ and ] also
# stop Streamlit's :colour[...] directives); escaped with a backslash, the text reads the same
_ANYWHERE = re.compile(r"[\\`*\[\]<>$|~]")
_EDGE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")  # snake_case stays as it is: no emphasis
_LINE_START = re.compile(r"(?m)^(\s*)([#+=-])")  # headings, lists, setext underlines
_NUMBERED = re.compile(r"(?m)^(\s*\d+)([.)])")  # numbered lists
# GFM turns bare URLs and e-mail addresses into links, and does so after escapes are read (seen in chromium: an
# escaped "https\://" still became a link), so an invisible word joiner goes where the pattern needs its next char
_BARE_LINK = re.compile(r"(?i)(://|\bwww\.|@)")
WORD_JOINER = "\u2060"


def plain(text: object) -> str:
    """``text`` escaped for st.markdown, st.error, st.caption, st.toast and widget labels: it shows as written (URLs
    and addresses carry an invisible word joiner) and forms no link, image, tag, formatting or block."""
    s = _ANYWHERE.sub(lambda m: "\\" + m.group(0), str(text))
    s = _EDGE_UNDERSCORE.sub(r"\\_", s)
    s = _LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), s)
    s = _NUMBERED.sub(lambda m: m.group(1) + "\\" + m.group(2), s)
    return _BARE_LINK.sub(lambda m: m.group(0)[0] + WORD_JOINER + m.group(0)[1:], s)
