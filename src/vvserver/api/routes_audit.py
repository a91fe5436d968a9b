"""Routes: the audit log for administrators (filtered reading and chain verification)."""

from __future__ import annotations

import logging

from vvserver.api.endpoints import ADMINS, ApiRouter, RequestContext
from vvserver.api.schemas_recordings import AuditItemOut, AuditListOut, AuditQuery, AuditVerifyOut
from vvserver.domain.accounts.scope import Caller
from vvserver.domain.audit.view import AuditFilter, read_audit_log, verify_audit_log

logger = logging.getLogger(__name__)

router = ApiRouter("audit")


@router.route("GET", "/api/audit", roles=ADMINS, query=AuditQuery, response=AuditListOut)
async def audit_log(ctx: RequestContext, query: AuditQuery) -> AuditListOut:
    """Audit entries in the caller's scope, newest first; ``before_id`` pages back."""
    page = await read_audit_log(
        ctx.services,
        Caller(ctx.require(), ctx.record),
        AuditFilter(
            facility_id=query.facility_id,
            action=query.action,
            actor_id=query.actor_id,
            date_from=query.date_from,
            date_to=query.date_to,
            before_id=query.before_id,
            limit=query.limit,
        ),
    )
    return AuditListOut(
        items=[
            AuditItemOut(
                id=item.id,
                at=item.entry.at,
                actor=item.entry.actor,
                actor_id=item.actor_id,
                actor_email=item.actor_email,
                action=item.entry.action,
                outcome=item.entry.outcome,
                target=item.entry.target,
                facility_id=item.facility_id,
                component=item.entry.component,
                request_id=item.entry.request_id,
                detail=dict(item.entry.details or {}),
            )
            for item in page.items
        ],
        next_before_id=page.next_before_id,
    )


@router.route("POST", "/api/audit/verify", roles=ADMINS, response=AuditVerifyOut)
async def verify_audit(ctx: RequestContext) -> AuditVerifyOut:
    """Check the whole hash chain and its signed anchor (audited ``audit.verify``)."""
    check = await verify_audit_log(ctx.services, Caller(ctx.require(), ctx.record))
    return AuditVerifyOut(
        ok=check.ok,
        checked=check.checked,
        problems=check.problems,
        first_broken_id=check.first_broken_id,
    )
