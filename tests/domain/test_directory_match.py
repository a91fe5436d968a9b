"""A visitor types a booking number the way they heard it and a last name as they spell it;
both must fit the same person for the directory to answer."""

from __future__ import annotations

import pytest

from vvserver.domain.people.directory_match import (
    NumberFormat,
    booking_number_matches,
    exact_booking_number,
    last_name_matches,
    number_format,
)


@pytest.mark.parametrize(
    "typed",
    [
        "DC-24002",
        "dc-24002",
        "DC24002",
        "dc 24002",
        " DC - 24 002 ",
        "24002",
        "24-002",
        "DC\u201324002",  # an en dash, as phones type it
    ],
)
def test_the_number_matches_with_or_without_its_prefix_in_any_case_and_spacing(
    typed: str,
) -> None:
    assert booking_number_matches(typed, "DC-24002")


@pytest.mark.parametrize(
    "typed", ["2400", "240021", "C24002", "D24002", "XY-24002", "", " - ", "DC"]
)
def test_a_different_or_partial_number_does_not_match(typed: str) -> None:
    assert not booking_number_matches(typed, "DC-24002")


def test_numbers_without_a_prefix_and_all_letter_numbers() -> None:
    assert booking_number_matches("2024-00123", "2024-00123")
    assert booking_number_matches("202400123", "2024-00123")
    assert not booking_number_matches("00123", "2024-00123")  # only letters are a prefix
    assert booking_number_matches("abc", "ABC")
    assert not booking_number_matches("", "ABC")


def test_an_exact_number_has_the_prefix() -> None:
    assert exact_booking_number("dc 24002", "DC-24002")
    assert not exact_booking_number("24002", "DC-24002")


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("moreno", "Moreno"),
        ("MORENO ", "Moreno"),
        ("pena", "Peña"),
        ("PEÑA", "Peña"),
        ("Nunez", "Núñez"),
        ("obrien", "O'Brien"),
        ("de la cruz", "De La Cruz"),
        ("delacruz", "De La Cruz"),
        ("Strasse", "Straße"),
    ],
)
def test_the_last_name_matches_without_case_accents_or_punctuation(typed: str, stored: str) -> None:
    assert last_name_matches(typed, stored)


@pytest.mark.parametrize("typed", ["Moren", "Morenos", "Moreira", "", "  ", "M"])
def test_another_last_name_does_not_match(typed: str) -> None:
    assert not last_name_matches(typed, "Moreno")


def test_the_format_is_the_commonest_shape_with_invented_digits() -> None:
    shape = number_format(["DC-24002", "dc-24117", "DC-30001", "TMP7"])
    assert shape == NumberFormat("DC-#####")
    assert shape is not None
    assert (shape.example, shape.prefix, shape.digits) == ("DC-12345", "DC", 5)
    yearly = number_format(["2024-00123", "2025-00777", "A-1"])
    assert yearly is not None
    assert (yearly.example, yearly.prefix, yearly.digits) == ("1234-56789", "", 9)
    assert NumberFormat("############").example == "123456789012"
    assert number_format([]) is None
    assert number_format(["no digits"]) is None
