"""The asyncio client against the real app: the same resources awaited, history as an async iterator."""

from __future__ import annotations

import asyncio
import uuid

import alliance_sdk as sdk
import pytest
from alliance_sdk import AsyncAlliance


async def test_the_operator_onboards_a_brand(base_url: str, operator_key: str):
    async with AsyncAlliance(api_key=operator_key, base_url=base_url) as operator:
        tenant = await operator.admin.tenants.create(code=f"juice-{uuid.uuid4().hex[:8]}", name="Juice Bar",
                                                     currency_code="DROPS", point_value="0.01")
        assert await operator.admin.tenants.retrieve(tenant.id) == tenant
        assert tenant in await operator.admin.tenants.list()
        key = await operator.admin.keys.create(tenant.id, name="backend")
        assert [k.key_id for k in await operator.admin.keys.list(tenant.id)] == [key.key_id]
        assert (await operator.admin.keys.revoke(tenant.id, key.key_id)).revoked_at is not None


async def test_points_move_and_history_iterates_asynchronously(async_brand: AsyncAlliance):
    await asyncio.gather(*(async_brand.members.upsert(m) for m in ("alice", "bob")))
    credits = await asyncio.gather(*(async_brand.members.credit("alice", n, reason="task") for n in range(1, 6)))
    assert len({c.entry.id for c in credits}) == 5
    assert (await async_brand.members.debit("alice", 3, reason="coffee")).balances == {"alice": 12}
    assert (await async_brand.members.gift("alice", 2, to="bob")).balances == {"alice": 10, "bob": 2}

    hold = await async_brand.members.hold("alice", 4, reason="order")
    assert (await async_brand.holds.capture(hold.id)).balances == {"alice": 6}
    released = await async_brand.holds.release((await async_brand.members.hold("alice", 1, reason="order")).id)
    assert released.status == "voided"

    history = [item async for item in async_brand.members.history("alice", limit=2)]
    assert sorted(i.amount for i in history if i.kind == "credit") == [1, 2, 3, 4, 5]
    assert [i.kind for i in history[:3]] == ["capture", "gift", "debit"]

    debit = await async_brand.entries.retrieve(history[2].entry_id)
    reversed_debit = await async_brand.entries.reverse(debit.id, reason="refund")
    assert reversed_debit.balances == {"alice": 9}
    assert (await async_brand.members.balance("alice")).available == 9


async def test_errors_and_idempotency(async_brand: AsyncAlliance):
    await async_brand.members.upsert("carol")
    with pytest.raises(sdk.InsufficientPointsError):
        await async_brand.members.debit("carol", 1, reason="coffee")
    with pytest.raises(sdk.MemberNotFoundError):
        await async_brand.members.balance("nobody")

    key = str(uuid.uuid4())
    same = await asyncio.gather(*(async_brand.members.credit("carol", 9, reason="signup", idempotency_key=key)
                                  for _ in range(3)))
    assert len({op.entry.id for op in same}) == 1
    assert (await async_brand.members.retrieve("carol")).status == "active"
    assert (await async_brand.members.balance("carol")).balance == 9

    await async_brand.members.update("carol", status="frozen")
    with pytest.raises(sdk.MemberFrozenError):
        await async_brand.members.hold("carol", 1, reason="order")
