"""How a visitor's typed last name and booking number are matched against the roster.

People type a booking number the way they heard or read it: ``DC-24002``, ``dc 24002``,
``DC24002`` or just ``24002``. The number matches with or without its prefix (the letters in
front), in any case, with spaces, dashes, dots or slashes anywhere. The last name matches without
regard to case, accents or punctuation (``Peña`` is ``pena``, ``O'Brien`` is ``obrien``). Both
must match the same person: a number alone or a name alone finds nobody.

The expected format is shown to visitors from the shape of the facility's own numbers (most are
``DC-`` and five digits: the example is ``DC-12345``), never a real person's number.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
SAMPLE_DIGITS = "1234567890"


def _fold(text: str) -> str:
    """NFKD without combining marks, case-folded, letters and digits only."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return "".join(c for c in plain.casefold() if c.isalnum())


def booking_key(raw: str) -> str:
    """A booking number's letters and digits, upper case: ``dc-24 002`` -> ``DC24002``."""
    return _fold(raw).upper()


def booking_number_matches(typed: str, stored: str) -> bool:
    """The typed number is the stored one, with or without the stored number's prefix."""
    key = booking_key(typed)
    if not key:
        return False
    full = booking_key(stored)
    unprefixed = full.lstrip(_LETTERS)
    return key == full or (bool(unprefixed) and key == unprefixed)


def exact_booking_number(typed: str, stored: str) -> bool:
    """The typed number has the whole stored number, prefix included."""
    return booking_key(typed) == booking_key(stored)


def last_name_matches(typed: str, stored: str) -> bool:
    key = _fold(typed)
    return bool(key) and key == _fold(stored)


@dataclass(frozen=True, slots=True)
class NumberFormat:
    """The commonest shape of a facility's booking numbers: each digit written ``#``, letters
    and separators as they are (``DC-#####``, ``####-#####``)."""

    shape: str

    @property
    def prefix(self) -> str:
        """The letters in front, which a visitor may leave out."""
        return self.shape[: len(self.shape) - len(self.shape.lstrip(_LETTERS))]

    @property
    def digits(self) -> int:
        return self.shape.count("#")

    @property
    def example(self) -> str:
        """The shape with invented digits: ``DC-12345``."""
        digits = iter(SAMPLE_DIGITS * (self.digits // len(SAMPLE_DIGITS) + 1))
        return "".join(next(digits) if c == "#" else c for c in self.shape)


def number_format(numbers: Iterable[str]) -> NumberFormat | None:
    """The shape most of ``numbers`` have (None when there are none, or none has a digit)."""
    shapes: Counter[str] = Counter(
        "".join("#" if c.isdigit() else c for c in number.strip().upper())
        for number in numbers
        if any(c.isdigit() for c in number)
    )
    if not shapes:
        return None
    # Most common first; ties go to the shorter, then alphabetical, so the answer is stable.
    shape, _ = min(shapes.items(), key=lambda item: (-item[1], len(item[0]), item[0]))
    return NumberFormat(shape)
