"""Routes: staff multi-factor sign-in (TOTP, RFC 6238) and its recovery.

Three groups:
- ``/api/auth/mfa...``: the second step of a sign-in. Only a pending login (the ``vv_mfa``
  cookie that POST /api/auth/login sets when a second factor is due) reaches them.
- ``/api/account/mfa...``: a signed-in staff member's own factor: status, voluntary
  enrolment, new recovery codes.
- ``/api/staff/{account_id}/mfa/reset``: an administrator's recovery for a colleague.
"""

from __future__ import annotations

from aiohttp import web

from vvserver.api.endpoints import ADMINS, STAFF, ApiRouter, RequestContext
from vvserver.api.routes_auth import account_out, set_session_cookie
from vvserver.api.routes_facilities import caller, path_id
from vvserver.api.schemas_auth import SessionOut
from vvserver.api.schemas_mfa import (
    MfaCodeIn,
    MfaEnrolledOut,
    MfaEnrolmentOut,
    MfaPasswordIn,
    MfaPendingOut,
    MfaRegenerateIn,
    MfaSignedInOut,
    MfaStatusOut,
    MfaTotpIn,
    RecoveryCodesOut,
)
from vvserver.api.schemas_people import StaffOut
from vvserver.domain.accounts import mfa_enrolment, mfa_factors, staff
from vvserver.domain.accounts.mfa import pending_stage
from vvserver.domain.accounts.mfa_enrolment import Enrolment
from vvserver.domain.accounts.mfa_factors import Attempt
from vvserver.domain.accounts.principal import MFA_PENDING, Principal
from vvserver.domain.errors import Unauthenticated

router = ApiRouter("mfa")
PENDING = frozenset({MFA_PENDING})


def attempt(ctx: RequestContext) -> Attempt:
    return Attempt(ctx.client_ip, ctx.request_id)


def pending_key(principal: Principal) -> str:
    assert principal.session_hash is not None
    return principal.session_hash


def enrolment_out(enrolment: Enrolment) -> MfaEnrolmentOut:
    import segno  # loaded at the first enrolment, not at start (with xml: ~1.8 MB resident)

    qr = segno.make(enrolment.uri, error="m")
    return MfaEnrolmentOut(
        secret=enrolment.secret,
        otpauth_uri=enrolment.uri,
        qr_svg=qr.svg_data_uri(scale=5, border=4, dark="#000", light="#fff"),
    )


# ---------------------------------------------------------------------------- sign-in, step 2


@router.route("GET", "/api/auth/mfa", roles=PENDING, response=MfaPendingOut)
async def pending_login(ctx: RequestContext) -> MfaPendingOut:
    """The pending login of this browser: its stage and CSRF token (for a page reload)."""
    principal = ctx.require()
    found = await pending_stage(ctx.services, pending_key(principal))
    if found is None:
        raise Unauthenticated("this sign-in has expired; enter your password again")
    stage, expires_at = found
    return MfaPendingOut(
        stage=stage,
        email=principal.email or "",
        csrf_token=principal.csrf_token or "",
        expires_at=expires_at,
    )


@router.route("POST", "/api/auth/mfa", roles=PENDING, body=MfaCodeIn, response=MfaSignedInOut)
async def verify_code(ctx: RequestContext, body: MfaCodeIn) -> web.Response:
    """Finish signing in with the authenticator's 6-digit code or one recovery code.

    Sets the session cookie like POST /api/auth/login and ends the pending login. A code is
    accepted once (a code of the same or an older 30-second step is refused); a recovery code
    works once. Wrong codes count toward the account lockout (401 ``bad_code``, then 423).
    """
    await ctx.services.rate_limiter.hit(
        "login", ctx.client_ip, ctx.services.settings.rate_login_per_min
    )
    principal = ctx.require()
    verified = await mfa_factors.verify_pending_login(
        ctx.services,
        pending_key(principal),
        principal.require_account_id(),
        body.code,
        attempt(ctx),
    )
    signed = verified.signed_in
    out = MfaSignedInOut(
        account=account_out(signed.account),
        csrf_token=signed.csrf_token,
        mfa_method="recovery_code" if verified.method == "recovery_code" else "totp",
        recovery_codes_left=verified.recovery_codes_left,
    )
    response = web.json_response(out.model_dump(mode="json"))
    set_session_cookie(response, ctx, signed.cookie)
    return response


@router.route("POST", "/api/auth/mfa/enrolment", roles=PENDING, response=MfaEnrolmentOut)
async def begin_pending_enrolment(ctx: RequestContext) -> MfaEnrolmentOut:
    """Start enrolment during sign-in (stage ``enrol``): a new secret and its QR code.

    Calling it again replaces a secret that was not confirmed yet.
    """
    await ctx.services.rate_limiter.hit(
        "login", ctx.client_ip, ctx.services.settings.rate_login_per_min
    )
    principal = ctx.require()
    enrolment = await mfa_enrolment.begin_enrolment(
        ctx.services,
        principal.require_account_id(),
        attempt(ctx),
        pending_key=pending_key(principal),
    )
    return enrolment_out(enrolment)


@router.route(
    "POST",
    "/api/auth/mfa/enrolment/confirm",
    roles=PENDING,
    body=MfaTotpIn,
    response=MfaEnrolledOut,
)
async def confirm_pending_enrolment(ctx: RequestContext, body: MfaTotpIn) -> web.Response:
    """Confirm enrolment with the app's first code: signs in (session cookie) and returns the
    10 recovery codes, shown only this once."""
    await ctx.services.rate_limiter.hit(
        "login", ctx.client_ip, ctx.services.settings.rate_login_per_min
    )
    principal = ctx.require()
    codes, signed = await mfa_enrolment.confirm_enrolment(
        ctx.services,
        principal.require_account_id(),
        body.code,
        attempt(ctx),
        pending_key=pending_key(principal),
    )
    assert signed is not None
    session = SessionOut(account=account_out(signed.account), csrf_token=signed.csrf_token)
    out = MfaEnrolledOut(recovery_codes=codes, session=session)
    response = web.json_response(out.model_dump(mode="json"))
    set_session_cookie(response, ctx, signed.cookie)
    return response


# ---------------------------------------------------------------------------- own factor


@router.route("GET", "/api/account/mfa", roles=STAFF, response=MfaStatusOut)
async def my_mfa(ctx: RequestContext) -> MfaStatusOut:
    """The signed-in staff member's second factor: enrolled, required, recovery codes left."""
    status = await mfa_factors.mfa_status(ctx.services, ctx.require().require_account_id())
    return MfaStatusOut(
        enrolled=status.enrolled,
        required=status.required,
        enrolled_at=status.enrolled_at,
        recovery_codes_left=status.recovery_codes_left,
    )


@router.route(
    "POST",
    "/api/account/mfa/enrolment",
    roles=STAFF,
    body=MfaPasswordIn,
    response=MfaEnrolmentOut,
)
async def begin_enrolment(ctx: RequestContext, body: MfaPasswordIn) -> MfaEnrolmentOut:
    """Set up a second factor while signed in (where it is not required yet): needs the
    current password. Once confirmed, every later sign-in asks for a code."""
    await ctx.services.rate_limiter.hit(
        "login", ctx.client_ip, ctx.services.settings.rate_login_per_min
    )
    enrolment = await mfa_enrolment.begin_enrolment(
        ctx.services, ctx.require().require_account_id(), attempt(ctx), password=body.password
    )
    return enrolment_out(enrolment)


@router.route(
    "POST",
    "/api/account/mfa/enrolment/confirm",
    roles=STAFF,
    body=MfaTotpIn,
    response=MfaEnrolledOut,
)
async def confirm_enrolment(ctx: RequestContext, body: MfaTotpIn) -> MfaEnrolledOut:
    """Confirm enrolment with the app's first code; returns the recovery codes (once)."""
    codes, _ = await mfa_enrolment.confirm_enrolment(
        ctx.services, ctx.require().require_account_id(), body.code, attempt(ctx)
    )
    return MfaEnrolledOut(recovery_codes=codes)


@router.route(
    "POST",
    "/api/account/mfa/recovery-codes",
    roles=STAFF,
    body=MfaRegenerateIn,
    response=RecoveryCodesOut,
)
async def regenerate_recovery_codes(ctx: RequestContext, body: MfaRegenerateIn) -> RecoveryCodesOut:
    """New recovery codes after the current password and a code of the app; the old codes
    stop working. Wrong codes count toward the lockout."""
    await ctx.services.rate_limiter.hit(
        "login", ctx.client_ip, ctx.services.settings.rate_login_per_min
    )
    codes = await mfa_enrolment.regenerate_recovery_codes(
        ctx.services, ctx.require().require_account_id(), body.password, body.code, attempt(ctx)
    )
    return RecoveryCodesOut(recovery_codes=codes)


# ---------------------------------------------------------------------------- admin recovery


@router.route("POST", "/api/staff/{account_id}/mfa/reset", roles=ADMINS, response=StaffOut)
async def reset_mfa(ctx: RequestContext) -> StaffOut:
    """Reset a colleague's second factor (lost phone, locked out): the secret and recovery
    codes are deleted, the lockout lifted and their sessions ended; where MFA is required
    they enrol again at their next sign-in. Audited as ``mfa.reset``. Not for one's own."""
    account = await staff.reset_staff_mfa(ctx.services, caller(ctx), path_id(ctx, "account_id"))
    return StaffOut.of(account)
