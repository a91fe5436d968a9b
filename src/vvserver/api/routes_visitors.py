"""Routes: the visitor's profile and ID photo, staff ID checks, bans and approvals."""

from __future__ import annotations

from aiohttp import web

from vvserver.api.endpoints import ADMINS, STAFF, ApiRouter, RequestContext
from vvserver.api.routes_facilities import caller, path_id
from vvserver.api.schemas_visitors import (
    ApprovalBriefOut,
    ApprovalIn,
    ApprovalOut,
    ApprovalQuery,
    ApprovalRevokedOut,
    BanCreatedOut,
    BanIn,
    BanOut,
    BanQuery,
    DecisionIn,
    IdCheckIn,
    LiftIn,
    ProfilePatch,
    RevokeIn,
    VisitorOut,
    VisitorProfileOut,
)
from vvserver.domain.errors import PayloadTooLarge
from vvserver.domain.people import approvals, bans, visitors

router = ApiRouter("visitors")

VISITORS_AND_STAFF = STAFF | {"visitor"}
ID_PHOTO_TYPES = ("image/jpeg", "image/png")
USER_FILE_CSP = (
    "default-src 'none'; object-src 'none'; base-uri 'none'; sandbox; frame-ancestors 'none'"
)


# ---------------------------------------------------------------------------- the visitor


@router.route("GET", "/api/me", roles="visitor", response=VisitorProfileOut)
async def my_profile(ctx: RequestContext) -> VisitorProfileOut:
    """The signed-in visitor's profile, ID status and rejection reason."""
    account = await visitors.own_profile(ctx.services, ctx.require().require_account_id())
    return VisitorProfileOut.of(account)


@router.route("PATCH", "/api/me", roles="visitor", body=ProfilePatch, response=VisitorProfileOut)
async def update_my_profile(ctx: RequestContext, body: ProfilePatch) -> VisitorProfileOut:
    """Change the visitor's name, phone number or e-mail language."""
    account = await visitors.update_profile(
        ctx.services, caller(ctx), name=body.name, phone=body.phone, language=body.language
    )
    return VisitorProfileOut.of(account)


@router.route(
    "PUT",
    "/api/me/id-photo",
    roles="visitor",
    response=VisitorProfileOut,
    raw_body_types=ID_PHOTO_TYPES,
)
async def upload_id_photo(ctx: RequestContext) -> VisitorProfileOut:
    """Upload a photo of a government ID (JPEG or PNG, raw body); it goes to staff review.

    The image is decoded and stored encoded again: upright (EXIF orientation applied), without
    any metadata (EXIF, GPS, text chunks), at most 4096 pixels on its longer side. Refused
    (422): files that are not a complete JPEG or PNG (``not_an_image``, ``image_unreadable``),
    images over 40 megapixels (``image_too_large``), a body of another type than declared
    (``content_type_mismatch``).
    """
    limit = ctx.services.settings.max_upload_bytes
    length = ctx.request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"ID photos may be at most {limit} bytes")
    data = await ctx.request.read()
    account = await visitors.store_id_photo(
        ctx.services, caller(ctx), data, ctx.request.content_type
    )
    return VisitorProfileOut.of(account)


# ---------------------------------------------------------------------------- staff: visitors


@router.route("GET", "/api/visitors/{visitor_id}", roles=STAFF, response=VisitorOut)
async def get_visitor(ctx: RequestContext) -> VisitorOut:
    """A visitor who asked to visit (or is banned) at a facility in scope."""
    record = await visitors.visitor_record(ctx.services, ctx.require(), path_id(ctx, "visitor_id"))
    profile = VisitorProfileOut.of(record.account)
    return VisitorOut(
        **profile.model_dump(),
        active=record.account.active,
        approvals=[ApprovalBriefOut.of(a) for a in record.approvals],
        bans=[BanOut.of(b) for b in record.bans],
    )


@router.route(
    "GET", "/api/visitors/{visitor_id}/id-photo", roles=STAFF, raw_response_type="image/*"
)
async def get_id_photo(ctx: RequestContext) -> web.Response:
    """The visitor's ID photo, as a download (every view is audited)."""
    visitor_id = path_id(ctx, "visitor_id")
    data, content_type = await visitors.read_id_photo(ctx.services, caller(ctx), visitor_id)
    extension = "png" if content_type == "image/png" else "jpg"
    # A user's file: never rendered as a page of this origin (ASVS 3.2.1).
    return web.Response(
        body=data,
        content_type=content_type,
        headers={
            "Content-Disposition": f'attachment; filename="id-photo-{visitor_id}.{extension}"',
            "Content-Security-Policy": USER_FILE_CSP,
            "Cache-Control": "no-store, private",
        },
    )


@router.route(
    "POST",
    "/api/visitors/{visitor_id}/id-check",
    roles=ADMINS,
    body=IdCheckIn,
    response=VisitorProfileOut,
)
async def check_id(ctx: RequestContext, body: IdCheckIn) -> VisitorProfileOut:
    """Verify or reject the visitor's ID; the visitor is e-mailed the result.

    A facility admin sees a visitor (and may check their ID) only once the visitor has asked
    to visit someone in that facility: before that this answers 404 like any other object out of
    scope. An agency admin sees every visitor with a request in the agency.
    """
    account = await visitors.check_id(
        ctx.services,
        caller(ctx),
        path_id(ctx, "visitor_id"),
        verified=body.decision == "verified",
        reason=body.reason,
    )
    return VisitorProfileOut.of(account)


# ---------------------------------------------------------------------------- bans


@router.route(
    "POST",
    "/api/facilities/{facility_id}/bans",
    roles=ADMINS,
    body=BanIn,
    response=BanCreatedOut,
    status=201,
)
async def create_ban(ctx: RequestContext, body: BanIn) -> BanCreatedOut:
    """Bar a visitor from the facility; their visits there are cancelled."""
    ban, cancelled = await bans.create_ban(
        ctx.services,
        caller(ctx),
        path_id(ctx, "facility_id"),
        visitor_id=body.visitor_id,
        reason=body.reason,
        ends_at=body.ends_at,
    )
    return BanCreatedOut(ban=BanOut.of(ban), cancelled_visits=cancelled)


@router.route(
    "GET",
    "/api/facilities/{facility_id}/bans",
    roles=STAFF,
    query=BanQuery,
    response=list[BanOut],
)
async def list_bans(ctx: RequestContext, query: BanQuery) -> list[BanOut]:
    """Bans at the facility (in force only, unless ``active_only=false``)."""
    rows = await bans.list_bans(
        ctx.services, ctx.require(), path_id(ctx, "facility_id"), active_only=query.active_only
    )
    return [BanOut.of(ban, visitor) for ban, visitor in rows]


@router.route("POST", "/api/bans/{ban_id}/lift", roles=ADMINS, body=LiftIn, response=BanOut)
async def lift_ban(ctx: RequestContext, body: LiftIn) -> BanOut:
    """End a ban early; the visitor is told."""
    ban = await bans.lift_ban(ctx.services, caller(ctx), path_id(ctx, "ban_id"), body.reason)
    return BanOut.of(ban)


# ---------------------------------------------------------------------------- approvals


@router.route(
    "POST", "/api/approvals", roles="visitor", body=ApprovalIn, response=ApprovalOut, status=201
)
async def request_approval(ctx: RequestContext, body: ApprovalIn) -> ApprovalOut:
    """Ask to be approved to visit a person found in the directory (by its ``handle``).

    The facility's administrators are e-mailed. Until approved, the answer shows the person's
    last name and booking number only (``person.id`` and ``person.first_name`` are null).
    """
    row = await approvals.request_approval(
        ctx.services,
        caller(ctx),
        handle=body.handle,
        relationship=body.relationship,
        professional=body.professional,
        bar_number=body.bar_number,
    )
    return ApprovalOut.of(row, for_visitor=True)


@router.route(
    "GET",
    "/api/approvals",
    roles=VISITORS_AND_STAFF,
    query=ApprovalQuery,
    response=list[ApprovalOut],
)
async def list_approvals(ctx: RequestContext, query: ApprovalQuery) -> list[ApprovalOut]:
    """Visitors: their own requests (the person's id and first name once approved). Staff:
    approvals in scope (``status=requested``: the queue)."""
    principal = ctx.require()
    rows = await approvals.list_approvals(
        ctx.services,
        ctx.require(),
        status=query.status,
        person_id=query.person_id,
        facility_id=query.facility_id,
        limit=query.limit,
        offset=query.offset,
    )
    visitor = principal.role == "visitor"
    return [ApprovalOut.of(row, for_visitor=visitor) for row in rows]


@router.route(
    "POST",
    "/api/approvals/{approval_id}/decision",
    roles=ADMINS,
    body=DecisionIn,
    response=ApprovalOut,
)
async def decide_approval(ctx: RequestContext, body: DecisionIn) -> ApprovalOut:
    """Approve (visitor's e-mail and ID verified, no ban) or deny a request."""
    row = await approvals.decide_approval(
        ctx.services,
        caller(ctx),
        path_id(ctx, "approval_id"),
        approve=body.decision == "approved",
        reason=body.reason,
    )
    return ApprovalOut.of(row)


@router.route(
    "POST",
    "/api/approvals/{approval_id}/revoke",
    roles=ADMINS,
    body=RevokeIn,
    response=ApprovalRevokedOut,
)
async def revoke_approval(ctx: RequestContext, body: RevokeIn) -> ApprovalRevokedOut:
    """Withdraw an approval; the visitor's booked visits with the person are cancelled."""
    row, cancelled = await approvals.revoke_approval(
        ctx.services, caller(ctx), path_id(ctx, "approval_id"), body.reason
    )
    return ApprovalRevokedOut(approval=ApprovalOut.of(row), cancelled_visits=cancelled)
