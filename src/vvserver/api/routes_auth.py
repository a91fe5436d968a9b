"""Routes: sign-up, sign-in/out (here or everywhere), session, e-mail verification, unlock,
password reset and change.

The session cookie is ``vv_session``, or ``__Host-vv_session`` behind TLS (``behind_tls``).
"""

from __future__ import annotations

from aiohttp import web

from vvserver.api.endpoints import PUBLIC, ApiRouter, RequestContext
from vvserver.api.schemas_auth import (
    AccountOut,
    ChangePasswordIn,
    LanguageIn,
    LoginIn,
    ResetConfirmIn,
    ResetRequestIn,
    SessionOut,
    SignUpAcceptedOut,
    SignUpIn,
    TokenIn,
)
from vvserver.api.schemas_mfa import MfaPendingOut
from vvserver.db.models import Account
from vvserver.domain.accounts import password_change, preferences, signin, signup
from vvserver.domain.accounts.credentials import session_cookie_name
from vvserver.domain.accounts.email_links import normalise_email
from vvserver.domain.accounts.mfa import MFA_COOKIE, MFA_COOKIE_PATH, PENDING_TTL, PendingLogin
from vvserver.domain.accounts.scope import Caller
from vvserver.domain.errors import NotFound
from vvserver.domain.notices.language import language_of

router = ApiRouter("auth")
ACCOUNT_ROLES = frozenset({"visitor", "officer", "facility_admin", "agency_admin"})


def account_out(account: Account) -> AccountOut:
    return AccountOut(
        id=account.id,
        email=account.email,
        name=account.name,
        role=account.role,
        agency_id=account.agency_id,
        facility_id=account.facility_id,
        email_verified=account.email_verified_at is not None,
        id_status=account.id_status,
        language=language_of(account.language),
    )


@router.route(
    "POST", "/api/auth/signup", roles=PUBLIC, body=SignUpIn, response=SignUpAcceptedOut, status=202
)
async def sign_up(ctx: RequestContext, body: SignUpIn) -> SignUpAcceptedOut:
    """Create a visitor account (18+): a verification link is e-mailed.

    The answer is the same when the address already has an account: its owner is told by
    e-mail instead, so sign-up does not reveal which addresses have accounts.
    """
    settings = ctx.services.settings
    await ctx.services.rate_limiter.hit("signup", ctx.client_ip, settings.rate_signup_per_min)
    await signup.sign_up_visitor(
        ctx.services,
        email=body.email,
        password=body.password,
        name=body.name,
        date_of_birth=body.date_of_birth,
        phone=body.phone,
        client=ctx.client_ip,
        request_id=ctx.request_id,
        language=body.language,
    )
    return SignUpAcceptedOut(email=normalise_email(body.email))


def set_session_cookie(response: web.Response, ctx: RequestContext, cookie: str) -> None:
    # Behind TLS the name has the __Host- prefix: Secure, Path=/ and no Domain are required.
    response.set_cookie(
        session_cookie_name(ctx.services.settings),
        cookie,
        httponly=True,
        samesite="Lax",
        secure=ctx.services.settings.behind_tls,
        path="/",
    )
    response.del_cookie(MFA_COOKIE, path=MFA_COOKIE_PATH)


def pending_out(pending: PendingLogin) -> MfaPendingOut:
    return MfaPendingOut(
        stage=pending.stage,
        email=pending.account.email,
        csrf_token=pending.csrf_token,
        expires_at=pending.expires_at,
    )


@router.route(
    "POST",
    "/api/auth/login",
    roles=PUBLIC,
    body=LoginIn,
    response=SessionOut,
    extra_responses=((202, MfaPendingOut),),
)
async def login(ctx: RequestContext, body: LoginIn) -> web.Response:
    """Sign in; sets the HttpOnly session cookie and returns the CSRF token.

    Staff who must use a second factor get 202 instead, with no session: the body says
    ``mfa_required`` and its ``stage`` (``verify``: send a code to POST /api/auth/mfa;
    ``enrol``: set up an authenticator app first), and a pending login is set in the
    ``vv_mfa`` cookie (HttpOnly, SameSite=Strict, path /api/auth/mfa, valid 10 minutes, used
    once) that only the /api/auth/mfa endpoints accept.

    After ``lockout_failures`` wrong passwords (or second-step codes) in a row the address is
    locked (423) for ``lockout_minutes``, whether or not it has an account; the owner of an
    account is e-mailed an unlock link.
    """
    settings = ctx.services.settings
    await ctx.services.rate_limiter.hit("login", ctx.client_ip, settings.rate_login_per_min)
    signed = await signin.sign_in(
        ctx.services, body.email, body.password, client=ctx.client_ip, request_id=ctx.request_id
    )
    if isinstance(signed, PendingLogin):
        pending = web.json_response(pending_out(signed).model_dump(mode="json"), status=202)
        pending.set_cookie(
            MFA_COOKIE,
            signed.cookie,
            httponly=True,
            samesite="Strict",
            secure=settings.behind_tls,
            path=MFA_COOKIE_PATH,
            max_age=int(PENDING_TTL.total_seconds()),
        )
        return pending
    out = SessionOut(account=account_out(signed.account), csrf_token=signed.csrf_token)
    response = web.json_response(out.model_dump(mode="json"))
    set_session_cookie(response, ctx, signed.cookie)
    return response


def _signed_out(ctx: RequestContext) -> web.Response:
    settings = ctx.services.settings
    response = web.Response(status=204)
    response.del_cookie(
        session_cookie_name(settings), path="/", secure=settings.behind_tls, httponly=True
    )
    return response


@router.route("POST", "/api/auth/logout", roles=ACCOUNT_ROLES)
async def logout(ctx: RequestContext) -> web.Response:
    """End this session; sockets opened with it close at once (1008)."""
    principal = ctx.require()
    if principal.session_hash is not None:
        await signin.sign_out(
            ctx.services, principal.account_id, principal.session_hash, ctx.record("auth.logout")
        )
    return _signed_out(ctx)


@router.route("POST", "/api/auth/logout-everywhere", roles=ACCOUNT_ROLES)
async def logout_everywhere(ctx: RequestContext) -> web.Response:
    """End every session of this account, this one included (every device, every browser).

    All sockets opened with them close at once (1008).
    """
    principal = ctx.require()
    account_id = principal.require_account_id()
    await signin.sign_out_everywhere(
        ctx.services,
        account_id,
        ctx.record("auth.logout_everywhere", target=f"account:{account_id}"),
    )
    return _signed_out(ctx)


@router.route("GET", "/api/auth/session", roles=ACCOUNT_ROLES, response=SessionOut)
async def current_session(ctx: RequestContext) -> SessionOut:
    """Who am I; also returns the CSRF token for this session."""
    principal = ctx.require()
    async with ctx.services.read() as session:
        account = await session.get(Account, principal.require_account_id())
    if account is None:
        raise NotFound("no such account")
    return SessionOut(account=account_out(account), csrf_token=principal.csrf_token or "")


@router.route(
    "PUT", "/api/auth/language", roles=ACCOUNT_ROLES, body=LanguageIn, response=AccountOut
)
async def set_language(ctx: RequestContext, body: LanguageIn) -> AccountOut:
    """Choose the language (``en`` or ``es``) of this account's e-mails, for staff and visitors;
    the pages send it when the language picker changes."""
    account = await preferences.set_language(
        ctx.services, Caller(ctx.require(), ctx.record), body.language
    )
    return account_out(account)


@router.route("POST", "/api/auth/verify-email", roles=PUBLIC, body=TokenIn)
async def verify_email(ctx: RequestContext, body: TokenIn) -> None:
    """Confirm an e-mail address with the token from the link."""
    await ctx.services.rate_limiter.hit(
        "reset", ctx.client_ip, ctx.services.settings.rate_reset_per_min
    )
    await signup.verify_email(ctx.services, body.token, ctx.request_id)


@router.route("POST", "/api/auth/unlock", roles=PUBLIC, body=TokenIn)
async def unlock(ctx: RequestContext, body: TokenIn) -> None:
    """Lift a sign-in lock with the token of the unlock link e-mailed to the account's owner."""
    await ctx.services.rate_limiter.hit(
        "reset", ctx.client_ip, ctx.services.settings.rate_reset_per_min
    )
    await signin.unlock_account(ctx.services, body.token, ctx.request_id)


@router.route("POST", "/api/auth/resend-verification", roles="visitor")
async def resend_verification(ctx: RequestContext) -> None:
    """Send the e-mail verification link again."""
    await ctx.services.rate_limiter.hit(
        "reset", ctx.client_ip, ctx.services.settings.rate_reset_per_min
    )
    now = ctx.services.clock.now()
    async with ctx.services.write() as session:
        account = await session.get(Account, ctx.require().require_account_id())
        assert account is not None
        if account.email_verified_at is None:
            await signup.queue_verification(ctx.services, session, account, now)


@router.route("POST", "/api/auth/password-reset", roles=PUBLIC, body=ResetRequestIn, status=202)
async def password_reset(ctx: RequestContext, body: ResetRequestIn) -> web.Response:
    """E-mail a reset link if the account exists (same answer either way).

    At most 3 links an hour go to one account, whoever asks; further requests answer the same.
    """
    await ctx.services.rate_limiter.hit(
        "reset", ctx.client_ip, ctx.services.settings.rate_reset_per_min
    )
    await password_change.request_password_reset(ctx.services, body.email, ctx.request_id)
    return web.Response(status=202)


@router.route("POST", "/api/auth/password-reset/confirm", roles=PUBLIC, body=ResetConfirmIn)
async def password_reset_confirm(ctx: RequestContext, body: ResetConfirmIn) -> None:
    """Set a new password with the token from the reset link; ends all sessions.

    Refused (422) with ``weak_password`` (length) or ``weak_password_context`` (it contains
    "vvserver", the e-mail's local part or domain, or the facility's or agency's name).
    """
    await ctx.services.rate_limiter.hit(
        "reset", ctx.client_ip, ctx.services.settings.rate_reset_per_min
    )
    await password_change.reset_password(ctx.services, body.token, body.password, ctx.request_id)


@router.route("POST", "/api/auth/password", roles=ACCOUNT_ROLES, body=ChangePasswordIn)
async def change_password(ctx: RequestContext, body: ChangePasswordIn) -> None:
    """Change the signed-in account's password; its other sessions end (this one goes on)."""
    principal = ctx.require()
    await password_change.change_password(
        ctx.services,
        principal.require_account_id(),
        body.current_password,
        body.new_password,
        ctx.record("account.change_password", target=f"account:{principal.account_id}"),
        session_hash=principal.session_hash,
    )
