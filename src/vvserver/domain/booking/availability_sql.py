"""The prepared statements behind scheduling: who the person is and what their week holds.

* ``PARTIES``: the person with facility and unit and, for a visitor, the account's verification,
  the approval for this person and the latest unlifted ban at the facility;
* ``FACTS``: one ``UNION ALL`` of the unit's active visits around the range
  (``ix_visits_unit_start``), the person's and the visitor's visits in the local weeks the range
  touches (``ix_visits_person_start`` / ``ix_visits_visitor_start``), the facility's blackouts,
  the unit's enabled kiosks and the highest visit id. Every row is
  ``(kind, id, start, end, text, counts, makeup_for, facility)``; see ``availability_store``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Integer,
    String,
    and_,
    bindparam,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)

from vvserver.db.models import (
    ACTIVE_VISIT_STATES,
    Account,
    Approval,
    Blackout,
    Facility,
    HousingUnit,
    Kiosk,
    Person,
    Visit,
    VisitorBan,
)
from vvserver.db.prepared import Prepared
from vvserver.db.types import UTCDateTime

_V = Visit.__table__.c
_P = Person.__table__.c
_F = Facility.__table__.c
_U = HousingUnit.__table__.c
_K = Kiosk.__table__.c
_B = Blackout.__table__.c
_A = Account.__table__.c
_AP = Approval.__table__.c
_BAN = VisitorBan.__table__.c


def _instant(name: str) -> Any:
    return bindparam(name, type_=UTCDateTime())


_PERSON_COLUMNS = (
    _P.id,
    _P.agency_id,
    _P.facility_id,
    _P.unit_id,
    _P.status,
    _P.visiting_suspended_until,
    _P.first_name,
    _P.last_name,
    _F.name,
    _F.timezone,
    _F.rules,
    _U.name,
    _U.rules_override,
)
_PERSON_FROM = Person.__table__.join(Facility.__table__, _F.id == _P.facility_id).join(
    HousingUnit.__table__, _U.id == _P.unit_id
)
_PERSON = select(*_PERSON_COLUMNS).select_from(_PERSON_FROM).where(_P.id == bindparam("person"))
PERSON = Prepared(_PERSON)

_LATEST_BAN = (
    select(func.max(_BAN.ends_at))
    .where(
        _BAN.visitor_id == _A.id,
        _BAN.facility_id == _P.facility_id,
        _BAN.lifted_at.is_(None),
    )
    .scalar_subquery()
)
_PARTIES = (
    select(
        *_PERSON_COLUMNS,
        _A.id,
        _A.name,
        _A.email,
        _A.email_verified_at,
        _A.id_status,
        _AP.status,
        _AP.professional,
        _LATEST_BAN,
        _A.language,
    )
    .select_from(
        _PERSON_FROM.join(
            Account.__table__, and_(_A.id == bindparam("visitor"), _A.role == "visitor")
        ).outerjoin(Approval.__table__, and_(_AP.person_id == _P.id, _AP.visitor_id == _A.id))
    )
    .where(_P.id == bindparam("person"))
)
PARTIES = Prepared(_PARTIES)
# On PostgreSQL: the person row, then the visitor's account row (one statement, fixed order).
PARTIES_LOCKED = Prepared(_PARTIES.with_for_update(of=[Person.__table__, Account.__table__]))

KIOSKS_LOCKED = Prepared(
    select(_K.id).where(_K.unit_id == bindparam("unit")).order_by(_K.id).with_for_update()
)


def _visits(kind: str, *where: ColumnElement[bool]) -> Any:
    return select(
        literal(kind, String()),
        _V.kiosk_id,
        _V.start_at,
        _V.end_at,
        _V.state,
        _V.counts_toward_limit,
        _V.makeup_for_visit_id,
        _V.facility_id,
    ).where(*where)


FACTS = Prepared(
    union_all(
        _visits(
            "k",
            _V.unit_id == bindparam("unit"),
            _V.start_at > _instant("kiosk_from"),  # bounds the index range scan
            _V.start_at < _instant("kiosk_hi"),
            _V.end_at > _instant("kiosk_lo"),
            or_(*(_V.state == state for state in ACTIVE_VISIT_STATES)),
        ),
        _visits(
            "p",
            _V.person_id == bindparam("person"),
            _V.start_at > _instant("weeks_from"),
            _V.start_at < _instant("weeks_hi"),
        ),
        _visits(
            "v",
            _V.visitor_id == bindparam("visitor"),
            _V.start_at > _instant("weeks_from"),
            _V.start_at < _instant("weeks_hi"),
        ),
        select(
            literal("b", String()),
            cast(null(), Integer()),
            _B.starts_at,
            _B.ends_at,
            cast(null(), String()),
            cast(null(), Boolean()),
            cast(null(), Integer()),
            _B.facility_id,
        ).where(
            _B.facility_id == bindparam("facility"),
            or_(_B.unit_id.is_(None), _B.unit_id == bindparam("unit")),
            _B.starts_at < _instant("weeks_hi"),
            _B.ends_at > _instant("weeks_lo"),
        ),
        select(  # the unit's enabled kiosks, their names in the text column
            literal("e", String()),
            _K.id,
            cast(null(), UTCDateTime()),
            cast(null(), UTCDateTime()),
            _K.name,
            cast(null(), Boolean()),
            cast(null(), Integer()),
            _K.facility_id,
        ).where(_K.unit_id == bindparam("unit"), _K.enabled.is_(True)),
        select(  # the highest visit id (see booking: SQLite writers are serialised)
            literal("n", String()),
            func.max(_V.id),
            cast(null(), UTCDateTime()),
            cast(null(), UTCDateTime()),
            cast(null(), String()),
            cast(null(), Boolean()),
            cast(null(), Integer()),
            cast(null(), Integer()),
        ),
    )
)
