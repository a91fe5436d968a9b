"""Routes: sign-up, sign-in/out, session, e-mail verification, password reset and change."""

from __future__ import annotations

from aiohttp import web

from vvserver.api.endpoints import PUBLIC, ApiRouter, RequestContext
from vvserver.api.schemas_auth import (
    AccountOut,
    ChangePasswordIn,
    LoginIn,
    ResetConfirmIn,
    ResetRequestIn,
    SessionOut,
    SignUpIn,
    TokenIn,
)
from vvserver.db.models import Account
from vvserver.domain.accounts import signin
from vvserver.domain.accounts.credentials import SESSION_COOKIE
from vvserver.domain.errors import NotFound

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
    )


@router.route(
    "POST", "/api/auth/signup", roles=PUBLIC, body=SignUpIn, response=AccountOut, status=201
)
async def sign_up(ctx: RequestContext, body: SignUpIn) -> AccountOut:
    """Create a visitor account (18+); a verification link is e-mailed."""
    settings = ctx.services.settings
    await ctx.services.rate_limiter.hit("signup", ctx.client_ip, settings.rate_signup_per_min)
    account = await signin.sign_up_visitor(
        ctx.services,
        email=body.email,
        password=body.password,
        name=body.name,
        date_of_birth=body.date_of_birth,
        phone=body.phone,
        request_id=ctx.request_id,
    )
    return account_out(account)


@router.route("POST", "/api/auth/login", roles=PUBLIC, body=LoginIn, response=SessionOut)
async def login(ctx: RequestContext, body: LoginIn) -> web.Response:
    """Sign in; sets the HttpOnly session cookie and returns the CSRF token."""
    settings = ctx.services.settings
    await ctx.services.rate_limiter.hit("login", ctx.client_ip, settings.rate_login_per_min)
    signed = await signin.sign_in(
        ctx.services, body.email, body.password, client=ctx.client_ip, request_id=ctx.request_id
    )
    out = SessionOut(account=account_out(signed.account), csrf_token=signed.csrf_token)
    response = web.json_response(out.model_dump(mode="json"))
    response.set_cookie(
        SESSION_COOKIE,
        signed.cookie,
        httponly=True,
        samesite="Lax",
        secure=settings.behind_tls,
        path="/",
    )
    return response


@router.route("POST", "/api/auth/logout", roles=ACCOUNT_ROLES)
async def logout(ctx: RequestContext) -> web.Response:
    """End this session."""
    principal = ctx.require()
    if principal.session_hash is not None:
        await signin.sign_out(ctx.services, principal.session_hash, ctx.record("auth.logout"))
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@router.route("GET", "/api/auth/session", roles=ACCOUNT_ROLES, response=SessionOut)
async def current_session(ctx: RequestContext) -> SessionOut:
    """Who am I; also returns the CSRF token for this session."""
    principal = ctx.require()
    async with ctx.services.read() as session:
        account = await session.get(Account, principal.require_account_id())
    if account is None:
        raise NotFound("no such account")
    return SessionOut(account=account_out(account), csrf_token=principal.csrf_token or "")


@router.route("POST", "/api/auth/verify-email", roles=PUBLIC, body=TokenIn)
async def verify_email(ctx: RequestContext, body: TokenIn) -> None:
    """Confirm an e-mail address with the token from the link."""
    await ctx.services.rate_limiter.hit(
        "reset", ctx.client_ip, ctx.services.settings.rate_reset_per_min
    )
    await signin.verify_email(ctx.services, body.token, ctx.request_id)


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
            await signin.queue_verification(ctx.services, session, account, now)


@router.route("POST", "/api/auth/password-reset", roles=PUBLIC, body=ResetRequestIn, status=202)
async def password_reset(ctx: RequestContext, body: ResetRequestIn) -> web.Response:
    """E-mail a reset link if the account exists (same answer either way)."""
    await ctx.services.rate_limiter.hit(
        "reset", ctx.client_ip, ctx.services.settings.rate_reset_per_min
    )
    await signin.request_password_reset(ctx.services, body.email, ctx.request_id)
    return web.Response(status=202)


@router.route("POST", "/api/auth/password-reset/confirm", roles=PUBLIC, body=ResetConfirmIn)
async def password_reset_confirm(ctx: RequestContext, body: ResetConfirmIn) -> None:
    """Set a new password with the token from the reset link; ends all sessions."""
    await ctx.services.rate_limiter.hit(
        "reset", ctx.client_ip, ctx.services.settings.rate_reset_per_min
    )
    await signin.reset_password(ctx.services, body.token, body.password, ctx.request_id)


@router.route("POST", "/api/auth/password", roles=ACCOUNT_ROLES, body=ChangePasswordIn)
async def change_password(ctx: RequestContext, body: ChangePasswordIn) -> None:
    """Change the signed-in account's password."""
    principal = ctx.require()
    await signin.change_password(
        ctx.services,
        principal.require_account_id(),
        body.current_password,
        body.new_password,
        ctx.record("account.change_password", target=f"account:{principal.account_id}"),
    )
