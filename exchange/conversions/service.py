"""The conversion's lifecycle, and what its brands read of it.

Each value-moving operation is one call of a SQL function (migrations/versions/0005: exchange_convert,
exchange_resolve, exchange_expire_conversions) on the connection given: atomic on its own (the API runs it as its
own transaction, one round trip) or inside the caller's. Nothing here commits. The function consumes the request's
signature, stores the outcome under the idempotency key (refusals too) and writes both brands' webhook events."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alliance.crypto.platform_key import PlatformSigner
from alliance.db import driver_connection, retry_transient
from alliance.db.tenancy import scoped_tenant_id
from alliance.decimals import plain
from alliance.errors import ProblemError
from alliance.ledger.service import request_hash
from exchange.conversions.models import Conversion
from exchange.conversions.schemas import ConversionAbort, ConversionCreate, ConversionPage, ConversionRead
from exchange.refusals import refusal
from exchange.signing.service import SignedRequest
from tenants import service as tenants


class ConversionRow(msgspec.Struct):
    """A conversion as the SQL answers it (numbers decoded exactly into Decimals); the same attributes as the
    Conversion model, so either reads the same."""

    id: int
    tenant_id: int
    counterparty_tenant_id: int = msgspec.field(name="target_tenant_id")
    status: str = ""
    source_brand: str = ""
    target_brand: str = ""
    source_member: str = ""
    source_identity: str | None = None
    target_member: str = ""
    target_identity: str = ""
    quote_id: int | None = None
    rate_card_id: int = 0
    source_amount: int = 0
    fee_amount: int = 0
    target_amount: int = 0
    rate: Decimal = Decimal(0)
    remainder: Decimal = Decimal(0)
    source_point_value: Decimal = Decimal(0)
    target_point_value: Decimal = Decimal(0)
    currency: str = ""
    gross_value: Decimal = Decimal(0)
    fee_value: Decimal = Decimal(0)
    net_value: Decimal = Decimal(0)
    hold_id: int | None = None
    expires_at: datetime | None = None
    window_id: int | None = None
    source_entry_id: int | None = None
    target_entry_id: int | None = None
    commit_kid: str | None = None
    commit_signature_digest: str | None = None  # hex
    abort_reason: str | None = None
    created_at: datetime | None = None
    committed_at: datetime | None = None
    resolved_at: datetime | None = None


class _Outcome(msgspec.Struct):
    ok: bool
    conversion: ConversionRow | None = None
    code: str | None = None
    detail: dict[str, Any] = {}
    replayed: bool = False


_outcome = msgspec.json.Decoder(_Outcome)


def _unwrap(raw: str) -> tuple[ConversionRow, bool]:
    outcome = _outcome.decode(raw)
    if not outcome.ok:
        raise refusal(outcome.code, outcome.detail)
    return outcome.conversion, outcome.replayed


def _signature_args(signed: SignedRequest) -> tuple:
    return signed.kid, signed.digest, signed.expires_at, signed.signature, signed.body


async def convert(
    conn: asyncpg.Connection, tenant_id: int, data: ConversionCreate, signed: SignedRequest, *,
    target_tenant_id: int, idempotency_key: str, business_date: date, now: datetime | None = None,
) -> tuple[ConversionRow, bool]:
    """Reserves a conversion (data.commit false) or converts at once; returns (conversion, replayed)."""
    now = now or datetime.now(UTC)
    raw = await retry_transient(conn, lambda: conn.fetchval(
        "SELECT exchange_convert($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)::text",
        tenant_id, idempotency_key, request_hash("exchange.convert", body=data), *_signature_args(signed),
        data.member, target_tenant_id, data.to_identity, data.amount, data.quote_id, data.commit,
        now + timedelta(seconds=data.reserve_seconds), business_date,
    ))
    return _unwrap(raw)


async def resolve(
    conn: asyncpg.Connection, tenant_id: int, conversion_id: int, signed: SignedRequest, *,
    abort: ConversionAbort | None, idempotency_key: str,
) -> tuple[ConversionRow, bool]:
    """Commits a reserved conversion of the brand's (abort None), or aborts it; returns (conversion, replayed)."""
    raw = await retry_transient(conn, lambda: conn.fetchval(
        "SELECT exchange_resolve($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)::text",
        tenant_id, idempotency_key,
        request_hash("exchange.abort" if abort else "exchange.commit", conversion_id=conversion_id, body=abort),
        *_signature_args(signed), conversion_id, abort is not None, abort.reason if abort else None,
    ))
    return _unwrap(raw)


async def expire_due(conn: asyncpg.Connection, now: datetime, *, batch: int = 500) -> int:
    """Expires one batch of reservations past their deadline; returns how many (call until 0)."""
    return await conn.fetchval("SELECT exchange_expire_conversions($1, $2)", now, batch)


# --- reading -----------------------------------------------------------------------------------------------

def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def countersigned_record(c: ConversionRow | Conversion, source_brand: str, target_brand: str) -> dict[str, Any]:
    """What the platform countersigns of a committed conversion: the same for both brands (members appear by
    alliance identity only), bound to the source brand's signed request that committed it."""
    digest = c.commit_signature_digest
    return {
        "type": "alliance.conversion",
        "conversion_id": c.id,
        "status": "committed",
        "source": {"brand": source_brand, "identity": c.source_identity, "amount": c.source_amount,
                   "fee_amount": c.fee_amount, "point_value": str(plain(c.source_point_value))},
        "target": {"brand": target_brand, "identity": c.target_identity, "amount": c.target_amount,
                   "point_value": str(plain(c.target_point_value))},
        "rate": str(plain(c.rate)),
        "remainder": str(plain(c.remainder)),
        "currency": c.currency.strip(),
        "gross_value": str(plain(c.gross_value)),
        "fee_value": str(plain(c.fee_value)),
        "net_value": str(plain(c.net_value)),
        "window_id": c.window_id,
        "committed_at": _utc(c.committed_at).isoformat().replace("+00:00", "Z"),
        "signed_request": {"kid": c.commit_kid, "sha256": digest if isinstance(digest, str) else digest.hex()},
    }


def conversion_read(
    c: ConversionRow | Conversion, *, viewer: int, source_brand: str, target_brand: str, signer: PlatformSigner,
    replayed: bool = False,
) -> ConversionRead:
    source = viewer == c.tenant_id
    countersignature = None
    if c.status == "committed":
        # Issued at the commit instant, so every read gives the same JWS (as long as the platform key is the same).
        countersignature = signer.countersign(countersigned_record(c, source_brand, target_brand),
                                              issued_at=int(c.committed_at.timestamp()))
    return ConversionRead(
        id=c.id, status=c.status, role="source" if source else "target",
        member=c.source_member if source else c.target_member,
        counterparty_identity=c.target_identity if source else c.source_identity,
        source_brand=source_brand, target_brand=target_brand, source_amount=c.source_amount,
        fee_amount=c.fee_amount, target_amount=c.target_amount, rate=plain(c.rate), remainder=plain(c.remainder),
        source_point_value=plain(c.source_point_value), target_point_value=plain(c.target_point_value),
        currency=c.currency.strip(), gross_value=plain(c.gross_value), fee_value=plain(c.fee_value),
        net_value=plain(c.net_value), quote_id=c.quote_id, expires_at=_utc(c.expires_at),
        created_at=_utc(c.created_at), committed_at=_utc(c.committed_at), resolved_at=_utc(c.resolved_at),
        abort_reason=c.abort_reason, entry_id=c.source_entry_id if source else c.target_entry_id,
        window_id=c.window_id, countersignature=countersignature, replayed=replayed,
    )


async def _read_all(session: AsyncSession, conversions: list[Conversion], signer: PlatformSigner) -> list[ConversionRead]:
    conn = await driver_connection(session)
    viewer = scoped_tenant_id(session)
    reads = []
    for c in conversions:
        codes = [await tenants.brand_code(conn, t) for t in (c.tenant_id, c.counterparty_tenant_id)]
        reads.append(conversion_read(c, viewer=viewer, source_brand=codes[0], target_brand=codes[1], signer=signer))
    return reads


async def get_conversion(session: AsyncSession, conversion_id: int, signer: PlatformSigner) -> ConversionRead:
    """A conversion of the brand's, as source or target (another brand's is not found)."""
    conversion = await session.scalar(select(Conversion).where(Conversion.id == conversion_id))
    if conversion is None:
        raise ProblemError(404, "conversion_not_found", "No such conversion", extra={"conversion_id": conversion_id})
    return (await _read_all(session, [conversion], signer))[0]


async def list_conversions(
    session: AsyncSession, signer: PlatformSigner, *, cursor: int | None, limit: int, status: str | None,
    role: str | None,
) -> ConversionPage:
    """The brand's conversions, as source and as target, newest first; page on with `cursor` (the last id)."""
    viewer = scoped_tenant_id(session)
    query = select(Conversion).order_by(Conversion.id.desc()).limit(limit + 1)
    if cursor is not None:
        query = query.where(Conversion.id < cursor)
    if status is not None:
        query = query.where(Conversion.status == status)
    if role == "source":
        query = query.where(Conversion.tenant_id == viewer)
    elif role == "target":
        query = query.where(Conversion.counterparty_tenant_id == viewer)
    conversions = list(await session.scalars(query))
    page = conversions[:limit]
    return ConversionPage(data=await _read_all(session, page, signer),
                          next_cursor=str(page[-1].id) if len(conversions) > limit else None)
