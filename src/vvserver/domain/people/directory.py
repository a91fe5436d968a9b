"""The visitor's directory: find one active person by last name AND booking number.

The directory can never be listed or browsed: a lookup answers at most one person, and only when
both the last name and the booking number match them (``directory_match``). The expected format
of a facility's booking numbers is derived from its roster's numbers, as an invented example.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from vvserver.db.models import Facility, Person
from vvserver.domain.errors import NotFound
from vvserver.domain.people.directory_match import (
    NumberFormat,
    booking_number_matches,
    exact_booking_number,
    last_name_matches,
    number_format,
)
from vvserver.domain.services import Services

logger = logging.getLogger(__name__)


async def find_in_directory(
    services: Services, facility_id: int, *, last_name: str, booking_number: str
) -> Person | None:
    """The active person at this facility whose booking number (with or without its prefix,
    any case, spaces or dashes) AND last name (any case or accents) match; None when nobody
    does, or when the typed number without a prefix fits two people of that name."""
    async with services.read() as session:
        if await session.get(Facility, facility_id) is None:
            raise NotFound("no such facility")
        rows = (
            await session.execute(
                select(Person.id, Person.booking_number, Person.last_name).where(
                    Person.facility_id == facility_id, Person.status == "active"
                )
            )
        ).all()
        found = [
            (person_id, number)
            for person_id, number, name in rows
            if booking_number_matches(booking_number, number) and last_name_matches(last_name, name)
        ]
        exact = [pair for pair in found if exact_booking_number(booking_number, pair[1])]
        chosen = exact or found
        if len(chosen) != 1:
            if chosen:
                logger.info(
                    "directory lookup at facility %s fits %s people", facility_id, len(chosen)
                )
            return None
        return await session.get(Person, chosen[0][0])


async def directory_format(services: Services, facility_id: int) -> NumberFormat | None:
    """The commonest shape of the facility's active booking numbers (None: no roster yet)."""
    async with services.read() as session:
        if await session.get(Facility, facility_id) is None:
            raise NotFound("no such facility")
        numbers = await session.scalars(
            select(Person.booking_number).where(
                Person.facility_id == facility_id, Person.status == "active"
            )
        )
        return number_format(numbers.all())
