"""Routes: facilities, visiting rules, housing units, kiosks, blackouts.

Scope: officers and facility admins reach their own facility, agency admins their agency;
anything else answers 404. Changes need an administrator (officers get 403).
"""

from __future__ import annotations

from vvserver.api.endpoints import ADMINS, STAFF, ApiRouter, RequestContext
from vvserver.api.schemas_facilities import (
    MAX_ID,
    BlackoutCreatedOut,
    BlackoutIn,
    BlackoutOut,
    BlackoutQuery,
    FacilityIn,
    FacilityOut,
    FacilityPatch,
    FacilityQuery,
    KioskCredentialOut,
    KioskIn,
    KioskOut,
    KioskPatch,
    RulesIn,
    RulesOut,
    UnitIn,
    UnitOut,
    UnitRulesIn,
)
from vvserver.domain.accounts.scope import Caller
from vvserver.domain.errors import NotFound
from vvserver.domain.facilities import blackouts, kiosks, sites
from vvserver.domain.facilities.rules import VisitingRules

router = ApiRouter("facilities")

AGENCY_ADMIN = frozenset({"agency_admin"})
VISITORS_AND_STAFF = STAFF | {"visitor"}


def path_id(ctx: RequestContext, name: str) -> int:
    """A path id; out-of-range numbers are simply not found (never a database error)."""
    value = ctx.path_int(name)
    if value > MAX_ID:
        raise NotFound(f"no such {name.removesuffix('_id')}")
    return value


def caller(ctx: RequestContext) -> Caller:
    return Caller(ctx.require(), ctx.record)


# ---------------------------------------------------------------------------- facilities


@router.route(
    "POST", "/api/facilities", roles=AGENCY_ADMIN, body=FacilityIn, response=FacilityOut, status=201
)
async def create_facility(ctx: RequestContext, body: FacilityIn) -> FacilityOut:
    """Create a facility in the caller's agency (IANA time zone; rules default if omitted)."""
    rules = body.rules.to_rules() if body.rules is not None else VisitingRules()
    facility = await sites.create_facility(
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
    rows = await sites.list_facilities(ctx.services, ctx.require(), query.q)
    return [FacilityOut.of(f) for f in rows]


@router.route(
    "GET", "/api/facilities/{facility_id}", roles=VISITORS_AND_STAFF, response=FacilityOut
)
async def get_facility(ctx: RequestContext) -> FacilityOut:
    """One facility with its time zone and visiting rules."""
    facility = await sites.get_facility(ctx.services, ctx.require(), path_id(ctx, "facility_id"))
    return FacilityOut.of(facility)


@router.route(
    "PATCH", "/api/facilities/{facility_id}", roles=ADMINS, body=FacilityPatch, response=FacilityOut
)
async def update_facility(ctx: RequestContext, body: FacilityPatch) -> FacilityOut:
    """Rename a facility, change its time zone, or whether its officers must use MFA."""
    facility = await sites.update_facility(
        ctx.services,
        caller(ctx),
        path_id(ctx, "facility_id"),
        name=body.name,
        timezone=body.timezone,
        officer_mfa_required=body.officer_mfa_required,
    )
    return FacilityOut.of(facility)


@router.route(
    "PUT", "/api/facilities/{facility_id}/rules", roles=ADMINS, body=RulesIn, response=RulesOut
)
async def set_facility_rules(ctx: RequestContext, body: RulesIn) -> RulesOut:
    """Replace the facility's visiting rules."""
    facility = await sites.set_facility_rules(
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
    unit, facility = await sites.create_unit(
        ctx.services, caller(ctx), path_id(ctx, "facility_id"), body.name
    )
    return UnitOut.of(unit, facility)


@router.route("GET", "/api/facilities/{facility_id}/units", roles=STAFF, response=list[UnitOut])
async def list_units(ctx: RequestContext) -> list[UnitOut]:
    """The facility's housing units with their effective rules."""
    principal = ctx.require()
    facility = await sites.get_facility(ctx.services, principal, path_id(ctx, "facility_id"))
    units = await sites.list_units(ctx.services, principal, facility.id)
    return [UnitOut.of(unit, facility) for unit in units]


@router.route("PUT", "/api/units/{unit_id}/rules", roles=ADMINS, body=UnitRulesIn, response=UnitOut)
async def set_unit_rules(ctx: RequestContext, body: UnitRulesIn) -> UnitOut:
    """Override some of the facility's rules for one unit (null clears an override)."""
    unit, facility = await sites.set_unit_rules(
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
    """The facility's kiosks: enabled flag, online now, and when each was last seen."""
    rows = await kiosks.list_kiosks(ctx.services, ctx.require(), path_id(ctx, "facility_id"))
    online = ctx.services.kiosks_online
    # A disabled kiosk is offline even in the moment before its socket has closed.
    return [KioskOut.of(k, online=k.enabled and online.is_online(k.id)) for k in rows]


@router.route("POST", "/api/kiosks/{kiosk_id}/rotate", roles=ADMINS, response=KioskCredentialOut)
async def rotate_kiosk(ctx: RequestContext) -> KioskCredentialOut:
    """Issue a new device token; the old one stops working and its open socket closes (1008)."""
    kiosk, token = await kiosks.rotate_kiosk(ctx.services, caller(ctx), path_id(ctx, "kiosk_id"))
    return KioskCredentialOut(kiosk=KioskOut.of(kiosk), token=token)


@router.route("PATCH", "/api/kiosks/{kiosk_id}", roles=ADMINS, body=KioskPatch, response=KioskOut)
async def update_kiosk(ctx: RequestContext, body: KioskPatch) -> KioskOut:
    """Rename, enable or disable a kiosk; disabling closes its open socket at once (1008)."""
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
