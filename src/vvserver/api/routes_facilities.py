"""Routes: facilities, visiting rules, housing units, kiosks, blackouts, persons, staff.

Scope: officers and facility admins reach their own facility, agency admins their agency;
anything else answers 404. Changes need an administrator (officers get 403).
"""

from __future__ import annotations

from vvserver.api.registry import ADMINS, STAFF, ApiRouter, RequestContext
from vvserver.api.schemas_facilities import (
    MAX_ID,
    BlackoutCreatedOut,
    BlackoutIn,
    BlackoutOut,
    BlackoutQuery,
    DirectoryEntryOut,
    DirectoryQuery,
    FacilityIn,
    FacilityOut,
    FacilityPatch,
    FacilityQuery,
    KioskCredentialOut,
    KioskIn,
    KioskOut,
    KioskPatch,
    PersonChangeOut,
    PersonIn,
    PersonOut,
    PersonPatch,
    PersonQuery,
    PinIn,
    ReleaseIn,
    RulesIn,
    RulesOut,
    StaffIn,
    StaffOut,
    StaffQuery,
    SuspendIn,
    TransferIn,
    UnitIn,
    UnitOut,
    UnitRulesIn,
)
from vvserver.domain import blackouts, facilities, kiosks, persons, staff
from vvserver.domain.errors import NotFound
from vvserver.domain.persons import PersonChange
from vvserver.domain.rules import VisitingRules
from vvserver.domain.scope import Caller

router = ApiRouter("facilities")

AGENCY_ADMIN = frozenset({"agency_admin"})
VISITORS_AND_STAFF = STAFF | {"visitor"}
# Directory look-ups per visitor account and minute (booking numbers must not be guessable).
DIRECTORY_LOOKUPS_PER_MIN = 30


def path_id(ctx: RequestContext, name: str) -> int:
    """A path id; out-of-range numbers are simply not found (never a database error)."""
    value = ctx.path_int(name)
    if value > MAX_ID:
        raise NotFound(f"no such {name.removesuffix('_id')}")
    return value


def caller(ctx: RequestContext) -> Caller:
    return Caller(ctx.require(), ctx.record)


def change_out(change: PersonChange) -> PersonChangeOut:
    return PersonChangeOut(
        person=PersonOut.of(change.person), cancelled_visits=change.cancelled_visits
    )


# ---------------------------------------------------------------------------- facilities


@router.route(
    "POST", "/api/facilities", roles=AGENCY_ADMIN, body=FacilityIn, response=FacilityOut, status=201
)
async def create_facility(ctx: RequestContext, body: FacilityIn) -> FacilityOut:
    """Create a facility in the caller's agency (IANA time zone; rules default if omitted)."""
    rules = body.rules.to_rules() if body.rules is not None else VisitingRules()
    facility = await facilities.create_facility(
        ctx.services, caller(ctx), name=body.name, timezone=body.timezone, rules=rules
    )
    return FacilityOut.of(facility)


@router.route(
    "GET",
    "/api/facilities",
    roles=VISITORS_AND_STAFF,
    query=FacilityQuery,
    response=list[FacilityOut],
)
async def list_facilities(ctx: RequestContext, query: FacilityQuery) -> list[FacilityOut]:
    """Facilities in scope (staff), or every facility by name search (visitors)."""
    rows = await facilities.list_facilities(ctx.services, ctx.require(), query.q)
    return [FacilityOut.of(f) for f in rows]


@router.route(
    "GET", "/api/facilities/{facility_id}", roles=VISITORS_AND_STAFF, response=FacilityOut
)
async def get_facility(ctx: RequestContext) -> FacilityOut:
    """One facility with its time zone and visiting rules."""
    facility = await facilities.get_facility(
        ctx.services, ctx.require(), path_id(ctx, "facility_id")
    )
    return FacilityOut.of(facility)


@router.route(
    "PATCH", "/api/facilities/{facility_id}", roles=ADMINS, body=FacilityPatch, response=FacilityOut
)
async def update_facility(ctx: RequestContext, body: FacilityPatch) -> FacilityOut:
    """Rename a facility or change its time zone."""
    facility = await facilities.update_facility(
        ctx.services,
        caller(ctx),
        path_id(ctx, "facility_id"),
        name=body.name,
        timezone=body.timezone,
    )
    return FacilityOut.of(facility)


@router.route(
    "PUT", "/api/facilities/{facility_id}/rules", roles=ADMINS, body=RulesIn, response=RulesOut
)
async def set_facility_rules(ctx: RequestContext, body: RulesIn) -> RulesOut:
    """Replace the facility's visiting rules."""
    facility = await facilities.set_facility_rules(
        ctx.services, caller(ctx), path_id(ctx, "facility_id"), body.to_rules()
    )
    return RulesOut.of(VisitingRules.from_json(facility.rules))


# ---------------------------------------------------------------------------- units


@router.route(
    "POST",
    "/api/facilities/{facility_id}/units",
    roles=ADMINS,
    body=UnitIn,
    response=UnitOut,
    status=201,
)
async def create_unit(ctx: RequestContext, body: UnitIn) -> UnitOut:
    """Add a housing unit."""
    unit, facility = await facilities.create_unit(
        ctx.services, caller(ctx), path_id(ctx, "facility_id"), body.name
    )
    return UnitOut.of(unit, facility)


@router.route("GET", "/api/facilities/{facility_id}/units", roles=STAFF, response=list[UnitOut])
async def list_units(ctx: RequestContext) -> list[UnitOut]:
    """The facility's housing units with their effective rules."""
    principal = ctx.require()
    facility = await facilities.get_facility(ctx.services, principal, path_id(ctx, "facility_id"))
    units = await facilities.list_units(ctx.services, principal, facility.id)
    return [UnitOut.of(unit, facility) for unit in units]


@router.route("PUT", "/api/units/{unit_id}/rules", roles=ADMINS, body=UnitRulesIn, response=UnitOut)
async def set_unit_rules(ctx: RequestContext, body: UnitRulesIn) -> UnitOut:
    """Override some of the facility's rules for one unit (null clears an override)."""
    unit, facility = await facilities.set_unit_rules(
        ctx.services, caller(ctx), path_id(ctx, "unit_id"), body.changes()
    )
    return UnitOut.of(unit, facility)


# ---------------------------------------------------------------------------- kiosks


@router.route(
    "POST",
    "/api/facilities/{facility_id}/kiosks",
    roles=ADMINS,
    body=KioskIn,
    response=KioskCredentialOut,
    status=201,
)
async def create_kiosk(ctx: RequestContext, body: KioskIn) -> KioskCredentialOut:
    """Register a kiosk in a unit; the device token is returned once."""
    kiosk, token = await kiosks.create_kiosk(
        ctx.services, caller(ctx), path_id(ctx, "facility_id"), unit_id=body.unit_id, name=body.name
    )
    return KioskCredentialOut(kiosk=KioskOut.of(kiosk), token=token)


@router.route("GET", "/api/facilities/{facility_id}/kiosks", roles=STAFF, response=list[KioskOut])
async def list_kiosks(ctx: RequestContext) -> list[KioskOut]:
    """The facility's kiosks: enabled flag and when each was last seen."""
    rows = await kiosks.list_kiosks(ctx.services, ctx.require(), path_id(ctx, "facility_id"))
    return [KioskOut.of(k) for k in rows]


@router.route("POST", "/api/kiosks/{kiosk_id}/rotate", roles=ADMINS, response=KioskCredentialOut)
async def rotate_kiosk(ctx: RequestContext) -> KioskCredentialOut:
    """Issue a new device token; the old one stops working."""
    kiosk, token = await kiosks.rotate_kiosk(ctx.services, caller(ctx), path_id(ctx, "kiosk_id"))
    return KioskCredentialOut(kiosk=KioskOut.of(kiosk), token=token)


@router.route("PATCH", "/api/kiosks/{kiosk_id}", roles=ADMINS, body=KioskPatch, response=KioskOut)
async def update_kiosk(ctx: RequestContext, body: KioskPatch) -> KioskOut:
    """Rename, enable or disable a kiosk."""
    kiosk = await kiosks.update_kiosk(
        ctx.services, caller(ctx), path_id(ctx, "kiosk_id"), name=body.name, enabled=body.enabled
    )
    return KioskOut.of(kiosk)


# ---------------------------------------------------------------------------- blackouts


@router.route(
    "POST",
    "/api/facilities/{facility_id}/blackouts",
    roles=ADMINS,
    body=BlackoutIn,
    response=BlackoutCreatedOut,
    status=201,
)
async def create_blackout(ctx: RequestContext, body: BlackoutIn) -> BlackoutCreatedOut:
    """Close the facility or a unit for a period; covered visits are cancelled (visitors told)."""
    blackout, cancelled = await blackouts.create_blackout(
        ctx.services,
        caller(ctx),
        path_id(ctx, "facility_id"),
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        reason=body.reason,
        unit_id=body.unit_id,
    )
    return BlackoutCreatedOut(blackout=BlackoutOut.of(blackout), cancelled_visits=cancelled)


@router.route(
    "GET",
    "/api/facilities/{facility_id}/blackouts",
    roles=STAFF,
    query=BlackoutQuery,
    response=list[BlackoutOut],
)
async def list_blackouts(ctx: RequestContext, query: BlackoutQuery) -> list[BlackoutOut]:
    """Current and future blackouts (``include_past`` for all)."""
    rows = await blackouts.list_blackouts(
        ctx.services, ctx.require(), path_id(ctx, "facility_id"), include_past=query.include_past
    )
    return [BlackoutOut.of(b) for b in rows]


@router.route("DELETE", "/api/blackouts/{blackout_id}", roles=ADMINS)
async def delete_blackout(ctx: RequestContext) -> None:
    """Remove a blackout (cancelled visits stay cancelled)."""
    await blackouts.delete_blackout(ctx.services, caller(ctx), path_id(ctx, "blackout_id"))


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
    """Find an active person by exact booking number AND last name (at most one result)."""
    principal = ctx.require()
    ctx.services.rate_limiter.hit("directory", principal.actor, DIRECTORY_LOOKUPS_PER_MIN)
    person = await persons.find_in_directory(
        ctx.services,
        path_id(ctx, "facility_id"),
        last_name=query.last_name,
        booking_number=query.booking_number,
    )
    if person is None:
        return []
    return [
        DirectoryEntryOut(
            id=person.id,
            facility_id=person.facility_id,
            first_name=person.first_name,
            last_name=person.last_name,
            booking_number=person.booking_number,
        )
    ]


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
    """Switch a staff account off and end its sessions."""
    account = await staff.deactivate_staff(ctx.services, caller(ctx), path_id(ctx, "account_id"))
    return StaffOut.of(account)
