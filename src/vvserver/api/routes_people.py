"""Routes: people in custody (roster, release, transfer, suspension, PIN) and staff accounts.

Scope: officers and facility admins reach their own facility, agency admins their agency;
anything else answers 404. Changes need an administrator (officers get 403).
"""

from __future__ import annotations

from vvserver.api.endpoints import ADMINS, STAFF, ApiRouter, RequestContext
from vvserver.api.routes_facilities import caller, path_id
from vvserver.api.schemas_people import (
    DirectoryEntryOut,
    DirectoryFormatOut,
    DirectoryQuery,
    PersonChangeOut,
    PersonIn,
    PersonOut,
    PersonPatch,
    PersonQuery,
    PinIn,
    ReleaseIn,
    StaffIn,
    StaffOut,
    StaffQuery,
    SuspendIn,
    TransferIn,
)
from vvserver.domain.accounts import staff
from vvserver.domain.people import directory as directory_lookup
from vvserver.domain.people import persons
from vvserver.domain.people.directory_handles import issue_handle
from vvserver.domain.people.persons import PersonChange

router = ApiRouter("people")

# Directory look-ups per visitor account and minute (booking numbers must not be guessable).
DIRECTORY_LOOKUPS_PER_MIN = 30


def change_out(change: PersonChange) -> PersonChangeOut:
    return PersonChangeOut(
        person=PersonOut.of(change.person), cancelled_visits=change.cancelled_visits
    )


# ---------------------------------------------------------------------------- persons


@router.route(
    "POST",
    "/api/facilities/{facility_id}/persons",
    roles=ADMINS,
    body=PersonIn,
    response=PersonOut,
    status=201,
)
async def create_person(ctx: RequestContext, body: PersonIn) -> PersonOut:
    """Add a person in custody (booking number unique in the agency)."""
    person = await persons.create_person(
        ctx.services,
        caller(ctx),
        path_id(ctx, "facility_id"),
        unit_id=body.unit_id,
        booking_number=body.booking_number,
        first_name=body.first_name,
        last_name=body.last_name,
        pin=body.pin,
    )
    return PersonOut.of(person)


@router.route(
    "GET",
    "/api/facilities/{facility_id}/persons",
    roles=STAFF,
    query=PersonQuery,
    response=list[PersonOut],
)
async def list_persons(ctx: RequestContext, query: PersonQuery) -> list[PersonOut]:
    """Search the facility's roster by name part, booking number or status."""
    rows = await persons.list_persons(
        ctx.services,
        ctx.require(),
        path_id(ctx, "facility_id"),
        name=query.q,
        booking_number=query.booking_number,
        status=query.status,
        limit=query.limit,
        offset=query.offset,
    )
    return [PersonOut.of(p) for p in rows]


@router.route(
    "GET",
    "/api/facilities/{facility_id}/directory",
    roles="visitor",
    query=DirectoryQuery,
    response=list[DirectoryEntryOut],
)
async def directory(ctx: RequestContext, query: DirectoryQuery) -> list[DirectoryEntryOut]:
    """Find an active person by booking number AND last name (at most one result).

    The booking number matches with or without its prefix, in any case, with spaces or dashes
    (``DC-24002``, ``dc 24002``, ``24002``); the last name in any case, with or without accents.

    The result carries an opaque ``handle`` to ask for approval with, not the person's id.
    """
    principal = ctx.require()
    await ctx.services.rate_limiter.hit("directory", principal.actor, DIRECTORY_LOOKUPS_PER_MIN)
    person = await directory_lookup.find_in_directory(
        ctx.services,
        path_id(ctx, "facility_id"),
        last_name=query.last_name,
        booking_number=query.booking_number,
    )
    if person is None:
        return []
    handle = issue_handle(
        ctx.services.secret,
        person_id=person.id,
        visitor_id=principal.require_account_id(),
        now=ctx.services.clock.now(),
    )
    return [
        DirectoryEntryOut(
            handle=handle,
            facility_id=person.facility_id,
            last_name=person.last_name,
            booking_number=person.booking_number,
        )
    ]


@router.route(
    "GET",
    "/api/facilities/{facility_id}/directory/format",
    roles="visitor",
    response=DirectoryFormatOut,
)
async def directory_format(ctx: RequestContext) -> DirectoryFormatOut:
    """What the facility's booking numbers look like, to show next to the search: an invented
    example in the commonest shape of its numbers (``DC-12345``: never a real person's number);
    nulls when it has no one in custody."""
    shape = await directory_lookup.directory_format(ctx.services, path_id(ctx, "facility_id"))
    if shape is None:
        return DirectoryFormatOut(example=None, prefix=None, digits=None)
    return DirectoryFormatOut(example=shape.example, prefix=shape.prefix, digits=shape.digits)


@router.route("GET", "/api/persons/{person_id}", roles=STAFF, response=PersonOut)
async def get_person(ctx: RequestContext) -> PersonOut:
    """One person in custody."""
    person = await persons.get_person(ctx.services, ctx.require(), path_id(ctx, "person_id"))
    return PersonOut.of(person)


@router.route(
    "PATCH", "/api/persons/{person_id}", roles=ADMINS, body=PersonPatch, response=PersonChangeOut
)
async def update_person(ctx: RequestContext, body: PersonPatch) -> PersonChangeOut:
    """Correct the name or move to another unit of the facility (booked visits cancelled)."""
    change = await persons.update_person(
        ctx.services,
        caller(ctx),
        path_id(ctx, "person_id"),
        first_name=body.first_name,
        last_name=body.last_name,
        unit_id=body.unit_id,
    )
    return change_out(change)


@router.route(
    "POST",
    "/api/persons/{person_id}/release",
    roles=ADMINS,
    body=ReleaseIn,
    response=PersonChangeOut,
)
async def release_person(ctx: RequestContext, body: ReleaseIn) -> PersonChangeOut:
    """Release from custody; future visits are cancelled and visitors e-mailed."""
    change = await persons.release_person(
        ctx.services, caller(ctx), path_id(ctx, "person_id"), body.reason
    )
    return change_out(change)


@router.route(
    "POST",
    "/api/persons/{person_id}/transfer",
    roles=ADMINS,
    body=TransferIn,
    response=PersonChangeOut,
)
async def transfer_person(ctx: RequestContext, body: TransferIn) -> PersonChangeOut:
    """Transfer within the agency (or out of it); future visits are cancelled."""
    change = await persons.transfer_person(
        ctx.services,
        caller(ctx),
        path_id(ctx, "person_id"),
        facility_id=body.facility_id,
        unit_id=body.unit_id,
        reason=body.reason,
    )
    return change_out(change)


@router.route(
    "POST",
    "/api/persons/{person_id}/suspend",
    roles=ADMINS,
    body=SuspendIn,
    response=PersonChangeOut,
)
async def suspend_person(ctx: RequestContext, body: SuspendIn) -> PersonChangeOut:
    """Suspend visiting until a time; visits before then are cancelled."""
    change = await persons.suspend_visiting(
        ctx.services, caller(ctx), path_id(ctx, "person_id"), until=body.until, reason=body.reason
    )
    return change_out(change)


@router.route("POST", "/api/persons/{person_id}/unsuspend", roles=ADMINS, response=PersonOut)
async def unsuspend_person(ctx: RequestContext) -> PersonOut:
    """End a visiting suspension early."""
    person = await persons.unsuspend_visiting(ctx.services, caller(ctx), path_id(ctx, "person_id"))
    return PersonOut.of(person)


@router.route("PUT", "/api/persons/{person_id}/pin", roles=ADMINS, body=PinIn)
async def set_pin(ctx: RequestContext, body: PinIn) -> None:
    """Set the person's kiosk PIN (4 to 8 digits)."""
    await persons.set_pin(ctx.services, caller(ctx), path_id(ctx, "person_id"), body.pin)


# ---------------------------------------------------------------------------- staff


@router.route("POST", "/api/staff", roles=ADMINS, body=StaffIn, response=StaffOut, status=201)
async def create_staff(ctx: RequestContext, body: StaffIn) -> StaffOut:
    """Create an officer or administrator account."""
    account = await staff.create_staff(
        ctx.services,
        caller(ctx),
        email=body.email,
        name=body.name,
        role=body.role,
        facility_id=body.facility_id,
        password=body.password,
    )
    return StaffOut.of(account)


@router.route("GET", "/api/staff", roles=ADMINS, query=StaffQuery, response=list[StaffOut])
async def list_staff(ctx: RequestContext, query: StaffQuery) -> list[StaffOut]:
    """Staff accounts in scope (facility admins: their facility's officers and admins)."""
    rows = await staff.list_staff(
        ctx.services,
        ctx.require(),
        facility_id=query.facility_id,
        include_inactive=query.include_inactive,
    )
    return [StaffOut.of(a) for a in rows]


@router.route("POST", "/api/staff/{account_id}/deactivate", roles=ADMINS, response=StaffOut)
async def deactivate_staff(ctx: RequestContext) -> StaffOut:
    """Switch a staff account off and end its sessions; its open sockets close at once (1008)."""
    account = await staff.deactivate_staff(ctx.services, caller(ctx), path_id(ctx, "account_id"))
    return StaffOut.of(account)
