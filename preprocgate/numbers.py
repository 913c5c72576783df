"""Numbers written for people: thousands separators, percentages with the digits that matter, no ``-0.0000``.

Shared by the check lines (stages/compare.py) and the report, so that a number reads the same in both.
"""

from __future__ import annotations

import math


def count(n: int) -> str:
    """``8172675`` → ``8,172,675``."""
    return f"{n:,}"


def percent(fraction: float) -> str:
    """A fraction as a percentage with two decimals, more only where two would round a number that is not
    0 or 1 to ``0%`` or ``100%`` (``99.9996%`` stays visible as short of 100): ``0.996466`` → ``99.65%``."""
    if math.isnan(fraction):
        return "NaN"
    value = 100 * fraction
    if value == 100 or value == 0:
        return f"{value:.0f}%"
    for digits in range(2, 7):
        text = f"{value:.{digits}f}"
        if float(text) not in (0.0, 100.0):
            return f"{text}%"
    return f"{text}%"


def signed(value: float, digits: int = 4) -> str:
    """A difference with its sign, ``+0.0020``; one that rounds to zero is ``0.0000`` (never ``-0.0000``) and an
    exact zero ``0``."""
    if math.isnan(value):
        return "NaN"
    if value == 0:
        return "0"
    text = f"{value:+.{digits}f}"
    return text[1:] if float(text) == 0 else text


def fixed(value: float, digits: int = 4) -> str:
    """``0.4123``; never ``-0.0000``."""
    if math.isnan(value):
        return "NaN"
    text = f"{value:.{digits}f}"
    return text.lstrip("-") if float(text) == 0 else text
