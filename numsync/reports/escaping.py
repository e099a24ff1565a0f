"""One escaping rule per output format, for every value that comes from data (live or desired).

- Text: characters that change how a terminal or log shows the rest of the line — C0 and C1
  controls, DEL, bidirectional overrides and isolates, zero-width marks, line and paragraph
  separators — are written as visible escapes (``\\u202e``), so a live NOTE cannot reorder or
  hide what follows it.
- Markdown: data goes in code spans (:func:`code`), where GitLab renders no HTML, link, image,
  mention or reference; tables escape their pipes once, when the row is formatted.
- HTML: ``html.escape`` (in the drift page's renderer). JSON: data stays data (``json.dumps``).
- XML (the JUnit reports): :func:`xml_document` writes the tree, making every attribute value and
  every line of text visible on the way, so no renderer has to remember a value: XML 1.0 cannot
  hold most controls, the noncharacters U+FFFE/U+FFFF or a lone surrogate at all, escaped or not.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

#: Characters shown as escapes in text: C0 (but tab), DEL, C1, bidi marks/overrides/isolates,
#: zero-width space/joiners, word joiner, BOM, line and paragraph separators; and what no UTF-8
#: text or XML 1.0 document can carry: lone surrogates (a JSON ``\ud800``) and U+FFFE/U+FFFF.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ud800-\udfff\ufeff\ufffe\uffff]"
)
_BACKTICKS = re.compile(r"`+")


def visible(text: str) -> str:
    """``text`` with every invisible or layout-changing character written as ``\\uXXXX`` (newlines as ``\\n``)."""
    return _INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text.replace("\n", "\\n").replace("\r", "\\r"))


def code(value: str) -> str:
    """``value`` as one inline Markdown code span, whatever backticks, spaces or controls it holds."""
    value = visible(value)  # a code span is one line; controls would still reach the reader raw
    if not value:
        return "` `"
    runs = [len(m) for m in _BACKTICKS.findall(value)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if value.startswith(("`", " ")) or value.endswith(("`", " ")) else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def xml_document(root: ET.Element) -> str:
    """``root`` as an XML 1.0 document (with its declaration), every value made :func:`visible` here, once.

    Attribute values are one line each; element text keeps its line breaks (a JUnit failure body
    is several lines) and each line is made visible. What is left is tab, line feed and printable
    characters, all of which XML 1.0 holds; ElementTree escapes the markup (``<``, ``&``, quotes).
    ``root`` is changed in place: it was built to be written.
    """

    def lines(text: str) -> str:
        return "\n".join(visible(line) for line in text.split("\n"))

    for element in root.iter():
        for name, value in element.attrib.items():
            element.set(name, visible(value))
        if element.text:
            element.text = lines(element.text)
        if element.tail:
            element.tail = lines(element.tail)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
