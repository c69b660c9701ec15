"""Numbers written in the URL-safe base-64 alphabet, most significant digit first.

Instagram shortcodes and YouTube's channel and video ids are in this shape, so the sandbox packs a world
number into an id this way and reads it back from the id alone.
"""

from __future__ import annotations

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_INDEX = {char: value for value, char in enumerate(ALPHABET)}


def encode_base64_number(value: int, width: int = 1) -> str:
    """``value`` (zero or more) in base 64, left-padded with "A" (zero) to at least ``width`` characters."""
    chars = []
    while value:
        value, digit = divmod(value, 64)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars)).rjust(width, ALPHABET[0])


def decode_base64_number(text: str) -> int | None:
    """The number ``text`` spells, or None if a character is not in the alphabet."""
    value = 0
    for char in text:
        digit = _INDEX.get(char)
        if digit is None:
            return None
        value = value * 64 + digit
    return value
