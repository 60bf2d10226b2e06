"""Every number rfield prints, written exactly as computed.

Fields, jumps and centres are rationals (a centre after a stride-2 layer can be a
half; after a resize by 3, a third). A format that rounds them prints a confident
wrong number, so every output goes through these two functions: ``exact`` for text
(table, Markdown, CSV, HTML) and ``json_value`` for JSON.
"""

from __future__ import annotations

from fractions import Fraction

Number = Fraction | int


def _decimal_digits(denominator: int) -> int | None:
    """k with 10**k a multiple of ``denominator`` (a terminating decimal), else None."""
    twos = fives = 0
    while denominator % 2 == 0:
        denominator //= 2
        twos += 1
    while denominator % 5 == 0:
        denominator //= 5
        fives += 1
    return max(twos, fives) if denominator == 1 else None


def exact(x: Number | None) -> str:
    """``x`` in full: an integer as one, a terminating decimal with all its digits
    (-1023.5, 0.125; never exponent notation), any other rational as ``p/q`` (1/3)."""
    if x is None:
        return "-"
    if isinstance(x, bool) or not isinstance(x, (int, Fraction)):
        raise TypeError(f"exact() prints rationals, not {type(x).__name__}")
    x = Fraction(x)
    if x.denominator == 1:
        return str(x.numerator)
    k = _decimal_digits(x.denominator)
    if k is None:
        return f"{x.numerator}/{x.denominator}"
    scaled = abs(x.numerator) * (10 ** k // x.denominator)
    whole, frac = divmod(scaled, 10 ** k)
    sign = "-" if x < 0 else ""
    return f"{sign}{whole}.{str(frac).rjust(k, '0').rstrip('0')}"


def json_value(x: Number | None) -> int | float | str | None:
    """``x`` for JSON: an int when whole, a float where binary holds it exactly (any
    half, quarter, ...), else the string ``"p/q"`` (JSON has no exact thirds)."""
    if x is None:
        return None
    if isinstance(x, int):
        return x
    x = Fraction(x)
    if x.denominator == 1:
        return x.numerator
    d = x.denominator
    if d & (d - 1) == 0 and abs(x.numerator) < 2 ** 53:
        return float(x)  # a power of two below 2**53: the float is the value itself
    return f"{x.numerator}/{x.denominator}"


def parse(text: str) -> Fraction:
    """The inverse of ``exact`` and ``json_value`` (tests read outputs back with it)."""
    return Fraction(text)
