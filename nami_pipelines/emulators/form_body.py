"""`application/x-www-form-urlencoded` bodies read as `parse_qs` reads them, in C-speed passes.

An Identify request carries hundreds of identifications as one form field of percent-escaped
JSON. `parse_qs` unescapes it one `%` at a time in Python, which made it a fifth of the
emulator's work in a delivery benchmark: CPU the emulator then took from the sender it serves
on the same machine. JSON text is escaped mostly into a few escapes, so each of those is
replaced in one pass over the field; whatever escapes remain (`%25` among them, so nothing is
unescaped twice) take the standard path.
"""

from typing import Final
from urllib.parse import unquote_to_bytes

# What JSON text is mostly escaped into, as senders write it (upper-case hex, as `quote_plus`
# does). Each costs a pass over the field, so the list is short; any other escape, `%25` (a
# literal `%`) among them, is left to the standard path.
_COMMON_ESCAPES: Final = tuple((f"%{ord(char):02X}".encode(), char.encode()) for char in '"{}[]:,$')


def parse_form(body: bytes) -> dict[str, str]:
    """The fields of a form body, the last value of a repeated name winning (as
    `parse_qs(..., keep_blank_values=True)` then taking each name's last value)."""
    fields: dict[str, str] = {}
    for pair in body.split(b"&"):
        if not pair:
            continue
        name, _, value = pair.partition(b"=")
        fields[_unescaped(name)] = _unescaped(value)
    return fields


def _unescaped(text: bytes) -> str:
    text = text.replace(b"+", b" ")
    if b"%" in text:
        for escape, char in _COMMON_ESCAPES:
            text = text.replace(escape, char)
        if b"%" in text:
            text = unquote_to_bytes(text)
    return text.decode("utf-8", errors="replace")
