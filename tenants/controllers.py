"""The brand API (/v1/members, /v1/holds, /v1/entries) and the operator's brand onboarding (/v1/admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from litestar import Controller, Request, Response, get, patch, post
from litestar.params import JSONBody, PathParameter, QueryParameter

from alliance.auth import service as keys
from alliance.auth.guards import (
    brand_only,
    caller_transaction,
    current_principal,
    forget_verified_keys,
    idempotency_key,
    operator_only,
)
from alliance.auth.keys import KeyKind
from alliance.errors import ProblemError
from alliance.settings import get_settings
from tenants import service
from tenants.bulk.controllers import BulkController
from tenants.schemas import (
    BalanceRead,
    CreditCreate,
    DebitCreate,
    EntryRead,
    GiftCreate,
    HistoryPage,
    HoldCapture,
    HoldCreate,
    HoldRead,
    Instant,
    KeyCreate,
    KeyCreated,
    KeyRead,
    MemberRead,
    MemberUpdate,
    MemberUpsert,
    OperationRead,
    ReversalCreate,
    TenantCreate,
    TenantRead,
)

ExternalIdPath = Annotated[str, PathParameter(min_length=1, max_length=128)]
Id = Annotated[int, PathParameter(ge=1, le=2**62)]
KeyIdPath = Annotated[str, PathParameter(min_length=1, max_length=64)]


def _with_offset(**instants: datetime | None) -> None:
    # Query parameters skip msgspec's tz check: a naive time means different moments to different parties.
    naive = [name for name, value in instants.items() if value is not None and value.tzinfo is None]
    if naive:
        raise ProblemError(422, "validation_error", "Times must carry an offset, e.g. 2027-01-31T16:00:00Z",
                           extra={"errors": [{"key": name, "message": "missing UTC offset"} for name in naive]})


def _tenant_read(tenant) -> TenantRead:
    return TenantRead(id=tenant.id, code=tenant.code, name=tenant.name, status=tenant.status,
                      currency_code=tenant.currency_code, expiry_days=tenant.expiry_days,
                      created_at=tenant.created_at)


def _key_read(key) -> KeyRead:
    return KeyRead(key_id=key.key_id, name=key.name, created_at=key.created_at, revoked_at=key.revoked_at)


class AdminTenantController(Controller):
    path = "/v1/admin/tenants"
    tags = ["operator"]
    guards = [operator_only]

    @post("/", summary="Admit a brand, with its points currency")
    async def create(self, request: Request, data: JSONBody[TenantCreate]) -> TenantRead:
        tenant = await caller_transaction(request, lambda s: service.create_tenant(s, data, time_zone=get_settings().time_zone),
        )
        return _tenant_read(tenant)

    @get("/", summary="All brands")
    async def list_all(self, request: Request) -> list[TenantRead]:
        tenants = await caller_transaction(request, service.list_tenants)
        return [_tenant_read(t) for t in tenants]

    @get("/{tenant_id:int}", summary="One brand")
    async def get_one(self, request: Request, tenant_id: Id) -> TenantRead:
        tenant = await caller_transaction(request, lambda s: service.get_tenant(s, tenant_id)
        )
        return _tenant_read(tenant)

    @post("/{tenant_id:int}/keys", summary="Issue a brand API key (the secret is shown once)")
    async def create_key(self, request: Request, tenant_id: Id, data: JSONBody[KeyCreate]) -> KeyCreated:
        async def work(session):
            await service.get_tenant(session, tenant_id)
            return await keys.create_key(session, kind=KeyKind.BRAND, name=data.name, tenant_id=tenant_id)

        key, issued = await caller_transaction(request, work)
        return KeyCreated(key_id=key.key_id, name=key.name, created_at=key.created_at, secret=issued.secret)

    @get("/{tenant_id:int}/keys", summary="A brand's API keys (never their secrets)")
    async def list_keys(self, request: Request, tenant_id: Id) -> list[KeyRead]:
        async def work(session):
            await service.get_tenant(session, tenant_id)
            return await keys.list_keys(session, tenant_id)

        return [_key_read(k) for k in await caller_transaction(request, work)]

    @post("/{tenant_id:int}/keys/{key_id:str}/revoke", summary="Revoke a brand API key", status_code=200)
    async def revoke_key(self, request: Request, tenant_id: Id, key_id: KeyIdPath) -> KeyRead:
        key = await caller_transaction(request, lambda s: keys.revoke_key(s, tenant_id, key_id)
        )
        forget_verified_keys()
        return _key_read(key)



class BrandController(Controller):
    path = "/v1/brand"
    tags = ["members"]
    guards = [brand_only]

    @get("/", summary="The brand this API key belongs to (its id is what signed requests name)")
    async def get_own(self, request: Request) -> TenantRead:
        tenant_id = current_principal(request).tenant_id
        return _tenant_read(await caller_transaction(request, lambda s: service.get_tenant(s, tenant_id)))


class MemberController(Controller):
    path = "/v1/members"
    tags = ["members"]
    guards = [brand_only]

    @post("/", summary="Create a member, or update the profile of the one with this external id")
    async def upsert(self, request: Request, data: JSONBody[MemberUpsert]) -> Response[MemberRead]:
        cipher = request.app.state.cipher
        member, created = await caller_transaction(request, lambda s: service.upsert_member(s, cipher, data))
        return Response(service.member_read(member, cipher), status_code=201 if created else 200)

    @get("/{external_id:str}", summary="A member's profile")
    async def get_one(self, request: Request, external_id: ExternalIdPath) -> MemberRead:
        member = await caller_transaction(request, lambda s: service.get_member(s, external_id))
        return service.member_read(member, request.app.state.cipher)

    @patch("/{external_id:str}", summary="Change a member's profile or status (active / frozen)")
    async def update(self, request: Request, external_id: ExternalIdPath, data: JSONBody[MemberUpdate]) -> MemberRead:
        cipher = request.app.state.cipher
        member = await caller_transaction(request, lambda s: service.update_member(s, cipher, external_id, data))
        return service.member_read(member, cipher)

    @post("/{external_id:str}/credits", summary="Credit points (Idempotency-Key required)")
    async def credit(self, request: Request, external_id: ExternalIdPath, data: JSONBody[CreditCreate]) -> OperationRead:
        key = idempotency_key(request)
        return await caller_transaction(
            request, lambda s: service.credit(s, external_id, data, idempotency_key=key)
        )

    @post("/{external_id:str}/debits", summary="Debit points (Idempotency-Key required)")
    async def debit(self, request: Request, external_id: ExternalIdPath, data: JSONBody[DebitCreate]) -> OperationRead:
        key = idempotency_key(request)
        return await caller_transaction(request, lambda s: service.debit(s, external_id, data, idempotency_key=key))

    @post("/{external_id:str}/gifts", summary="Gift points to another member of the brand (Idempotency-Key required)")
    async def gift(self, request: Request, external_id: ExternalIdPath, data: JSONBody[GiftCreate]) -> OperationRead:
        key = idempotency_key(request)
        return await caller_transaction(request, lambda s: service.gift(s, external_id, data, idempotency_key=key))

    @post("/{external_id:str}/holds", summary="Hold points for a later capture (Idempotency-Key required)")
    async def hold(self, request: Request, external_id: ExternalIdPath, data: JSONBody[HoldCreate]) -> HoldRead:
        key = idempotency_key(request)
        return await caller_transaction(request, lambda s: service.hold(s, external_id, data, idempotency_key=key))

    @get("/{external_id:str}/balance", summary="Balance, held and available points, points expiring soon")
    async def balance(
        self, request: Request, external_id: ExternalIdPath,
        expiring_within_days: Annotated[int, QueryParameter(ge=1, le=3650)] = 30,
        at: Annotated[Instant | None, QueryParameter(description="the balance at this past instant")] = None,
    ) -> BalanceRead:
        _with_offset(at=at)
        time_zone = get_settings().time_zone
        return await caller_transaction(request, lambda s: service.balance(
            s, external_id, expiring_within_days=expiring_within_days, at=at, time_zone=time_zone))

    @get("/{external_id:str}/history", summary="A member's postings, newest first (cursor paginated)")
    async def history(
        self, request: Request, external_id: ExternalIdPath,
        cursor: Annotated[str | None, QueryParameter(pattern=r"^[0-9]{1,18}$")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        since: Annotated[Instant | None, QueryParameter()] = None,
        until: Annotated[Instant | None, QueryParameter()] = None,
        kind: Annotated[str | None, QueryParameter(max_length=64)] = None,
    ) -> HistoryPage:
        _with_offset(since=since, until=until)
        return await caller_transaction(request, lambda s: service.history(
            s, external_id, cursor=int(cursor) if cursor else None, limit=limit, since=since, until=until, kind=kind))


class HoldController(Controller):
    path = "/v1/holds"
    tags = ["holds"]
    guards = [brand_only]

    @post("/{hold_id:int}/capture", summary="Capture a hold, whole or in part (Idempotency-Key required)")
    async def capture(self, request: Request, hold_id: Id, data: JSONBody[HoldCapture]) -> OperationRead:
        key = idempotency_key(request)
        return await caller_transaction(request, lambda s: service.capture_hold(s, hold_id, data, idempotency_key=key))

    @post("/{hold_id:int}/release", summary="Release a hold (Idempotency-Key required)", status_code=200)
    async def release(self, request: Request, hold_id: Id) -> HoldRead:
        key = idempotency_key(request)
        return await caller_transaction(request, lambda s: service.release_hold(s, hold_id, idempotency_key=key))


class EntryController(Controller):
    path = "/v1/entries"
    tags = ["entries"]
    guards = [brand_only]

    @get("/{entry_id:int}", summary="One journal entry")
    async def get_one(self, request: Request, entry_id: Id) -> EntryRead:
        return await caller_transaction(request, lambda s: service.get_entry(s, entry_id))

    @post("/{entry_id:int}/reversal", summary="Reverse an entry, once (Idempotency-Key required)")
    async def reverse(self, request: Request, entry_id: Id, data: JSONBody[ReversalCreate]) -> OperationRead:
        key = idempotency_key(request)
        return await caller_transaction(request, lambda s: service.reverse(s, entry_id, data, idempotency_key=key))


ROUTE_HANDLERS = [AdminTenantController, BrandController, MemberController, HoldController, EntryController,
                  BulkController]
