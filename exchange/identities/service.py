"""Link codes, links and identities. Every function takes a session scoped to the calling brand and never
commits.

Redeeming a code is the one operation that writes across brands: it links the issuing brand's member too. The
code is that brand's (and its member's) consent, so the statements that touch the issuing brand's rows are named
here, on the link tables alone, keyed by the code's own tenant."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import column, delete, func, insert, select, table, update
from sqlalchemy.ext.asyncio import AsyncSession

from alliance.db.tenancy import scoped_tenant_id
from alliance.errors import ProblemError
from exchange.identities.models import AllianceIdentity, AllianceLink, LinkCode
from exchange.identities.schemas import LinkCodeRead, LinkRead, LinkRedeem
from tenants import service as tenants
from tenants.models import Tenant

LINK_CODE_LIFETIME = timedelta(minutes=10)
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # 32 symbols, no 0/O or 1/I: 60 bits in 12
CODE_LENGTH = 12

# The link tables of every brand, for redemption's cross-brand statements only (see the module's docstring).
_codes = table("alliance_link_codes", column("tenant_id"), column("id"), column("external_id"), column("code_hash"),
               column("expires_at"), column("redeemed_at"), column("redeemed_by_tenant"))
_links = table("alliance_links", column("tenant_id"), column("external_id"), column("identity_id"))


def _normalized(code: str) -> str:
    return code.replace("-", "").upper()


def _code_hash(code: str) -> bytes:
    return hashlib.sha256(_normalized(code).encode()).digest()


def _new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i:i + 4] for i in range(0, CODE_LENGTH, 4))


def _new_public_id() -> str:
    return "idn_" + base64.b32encode(secrets.token_bytes(10)).decode().lower()


async def issue_link_code(session: AsyncSession, external_id: str) -> LinkCodeRead:
    """A single-use code for the member to link this membership with one at another brand."""
    await tenants.get_member(session, external_id)
    code = _new_code()
    expires_at = datetime.now(UTC) + LINK_CODE_LIFETIME
    session.add(LinkCode(external_id=external_id, code_hash=_code_hash(code), expires_at=expires_at))
    await session.flush()
    return LinkCodeRead(code=code, member=external_id, expires_at=expires_at)


async def _identity_of(session: AsyncSession, tenant_id: int, external_id: str) -> int | None:
    return await session.scalar(select(_links.c.identity_id).where(
        _links.c.tenant_id == tenant_id, _links.c.external_id == external_id).with_for_update())


async def _link(session: AsyncSession, tenant_id: int, external_id: str, identity_id: int) -> None:
    taken = await session.scalar(select(_links.c.external_id).where(
        _links.c.identity_id == identity_id, _links.c.tenant_id == tenant_id))
    if taken is not None:
        raise ProblemError(409, "identity_already_linked_at_brand",
                           "This person's alliance identity already links another membership of that brand",
                           "Unlink that membership first.", extra={"tenant_id": tenant_id})
    await session.execute(insert(_links).values(tenant_id=tenant_id, external_id=external_id,
                                                identity_id=identity_id))


async def redeem_link_code(session: AsyncSession, data: LinkRedeem) -> LinkRead:
    """Links the member presenting the code with the member it was issued for, at another brand, under one
    alliance identity (theirs if either has one)."""
    tenant_id = scoped_tenant_id(session)
    await tenants.get_member(session, data.member)
    code = (await session.execute(
        select(_codes).where(_codes.c.code_hash == _code_hash(data.code)).with_for_update())).first()
    if code is None:
        raise ProblemError(404, "link_code_not_found", "No such link code",
                           "Check the code; each is valid once, for 10 minutes.")
    if code.redeemed_at is not None:
        raise ProblemError(409, "link_code_used", "This link code was used already")
    if code.expires_at <= datetime.now(UTC):
        raise ProblemError(422, "link_code_expired", "This link code has expired", "Ask for a new one.")
    if code.tenant_id == tenant_id:
        raise ProblemError(422, "link_code_same_brand", "A link code links memberships of two different brands")
    # In tenant order, whichever brand redeems: two redemptions between the same brands never deadlock.
    sides = sorted([(code.tenant_id, code.external_id), (tenant_id, data.member)])
    identities = {side: await _identity_of(session, *side) for side in sides}
    issuer, redeemer = identities[(code.tenant_id, code.external_id)], identities[(tenant_id, data.member)]
    if issuer is not None and redeemer is not None and issuer != redeemer:
        raise ProblemError(409, "members_linked_to_other_identities",
                           "Both memberships are linked already, to different alliance identities",
                           "Unlink one of them first.")
    identity_id = issuer or redeemer
    if identity_id is None:
        identity_id = await session.scalar(
            insert(AllianceIdentity).values(public_id=_new_public_id()).returning(AllianceIdentity.id))
    for side, linked in identities.items():
        if linked is None:
            await _link(session, *side, identity_id)
    await session.execute(update(_codes).where(_codes.c.tenant_id == code.tenant_id, _codes.c.id == code.id)
                          .values(redeemed_at=func.now(), redeemed_by_tenant=tenant_id))
    return await get_link(session, data.member)


async def get_link(session: AsyncSession, external_id: str) -> LinkRead:
    link = await session.scalar(select(AllianceLink).where(AllianceLink.external_id == external_id))
    if link is None:
        await tenants.get_member(session, external_id)  # member_not_found first
        raise ProblemError(404, "alliance_link_not_found", "The member has no alliance identity",
                           "Issue a link code and have the member redeem it at another brand.",
                           extra={"member": external_id})
    public_id = await session.scalar(select(AllianceIdentity.public_id).where(AllianceIdentity.id == link.identity_id))
    # Which brands the identity spans (codes only: never another brand's member ids).
    brands = list(await session.scalars(
        select(Tenant.code).join(_links, _links.c.tenant_id == Tenant.id)
        .where(_links.c.identity_id == link.identity_id).order_by(Tenant.code)))
    return LinkRead(member=external_id, identity=public_id, brands=brands, linked_at=link.linked_at)


async def unlink(session: AsyncSession, external_id: str) -> None:
    """Withdraws this membership from its alliance identity (the member's consent ends here); the person's other
    memberships stay linked to each other."""
    unlinked = await session.scalar(delete(AllianceLink).where(AllianceLink.external_id == external_id)
                                    .returning(AllianceLink.external_id))
    if unlinked is None:
        await get_link(session, external_id)  # member_not_found or alliance_link_not_found
