"""Property-based: for random conversions among three brands (converted at once, reserved then committed or
aborted, in any direction), the settlement of their window computes, passes its own three checks, and agrees
with an independent computation from the conversions: zero sum, bilateral nets adding up to the multilateral
positions, and the fen amounts rounded half away from zero and balanced by the operator's income."""

from __future__ import annotations

import uuid
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alliance.calendar import business_date
from alliance.db import run_in_transaction
from alliance.errors import ProblemError
from exchange.conversions import service as conversions
from exchange.conversions.schemas import ConversionAbort, ConversionCreate
from settlement import service
from tests.exchange_fixtures import accepted_signature

BRANDS = 3
conversion = st.tuples(st.integers(0, BRANDS - 1), st.integers(1, BRANDS - 1), st.integers(1, 5000),
                       st.sampled_from(["now", "reserve_commit", "reserve_abort"]))


@pytest.fixture
async def three_brands(exchange_brand, open_pair, member, link):
    values = ["0.1", "0.07", "0.013"]
    brands = [await exchange_brand(point_value=v, cap="1000000000") for v in values]
    for source in range(BRANDS):
        for target in range(BRANDS):
            if source != target:
                await open_pair(brands[source], brands[target], fee_bps=[0, 75, 333][(source + target) % 3])
        await member(brands[source], "p", 10**9)
    for other in range(1, BRANDS):
        await link(brands[0], "p", brands[other], "p")
    return brands


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(program=st.lists(conversion, min_size=1, max_size=25))
async def test_random_windows_settle_and_agree_with_an_independent_computation(db, pool, three_brands, program):
    brands = three_brands
    await run_in_transaction(db.sessions, lambda s: service.close_window(s, business_date=None,
                                                                        today=business_date()))
    async with pool.acquire() as conn:
        for source, offset, amount, how in program:
            target = (source + offset) % BRANDS
            try:
                row, _ = await conversions.convert(
                    conn, brands[source].id,
                    ConversionCreate(member="p", to_brand=brands[target].code, amount=amount, commit=how == "now"),
                    accepted_signature(brands[source]), target_tenant_id=brands[target].id,
                    idempotency_key=uuid.uuid4().hex, business_date=business_date())
            except ProblemError as refused:  # a few points of a cheap currency buy no point of a dear one
                assert refused.code == "amount_too_small"
                continue
            if how != "now":
                await conversions.resolve(conn, brands[source].id, row.id, accepted_signature(brands[source]),
                                          abort=ConversionAbort() if how == "reserve_abort" else None,
                                          idempotency_key=uuid.uuid4().hex)
    window = await run_in_transaction(db.sessions, lambda s: service.close_window(s, business_date=None,
                                                                                    today=business_date()))
    await run_in_transaction(db.sessions, lambda s: service.compute(s, window.id))  # its own checks pass

    rows = await pool.fetch("SELECT tenant_id, target_tenant_id, gross_value, fee_value, net_value"
                            " FROM exchange_conversions WHERE window_id = $1 AND status = 'committed'", window.id)
    position: dict[int, Decimal] = defaultdict(Decimal)
    bilateral: dict[tuple[int, int], Decimal] = defaultdict(Decimal)
    fees = Decimal(0)
    for r in rows:
        position[r["tenant_id"]] -= r["gross_value"]
        position[r["target_tenant_id"]] += r["net_value"]
        bilateral[r["tenant_id"], r["target_tenant_id"]] -= r["gross_value"]
        bilateral[r["target_tenant_id"], r["tenant_id"]] += r["net_value"]
        fees += r["fee_value"]
    assert sum(position.values()) + fees == 0
    for brand, net in position.items():
        assert sum(v for (b, _), v in bilateral.items() if b == brand) == net
    stored = {r["tenant_id"]: r for r in await pool.fetch(
        "SELECT tenant_id, net, net_fen FROM settlement_positions WHERE window_id = $1", window.id)}
    assert {t: r["net"] for t, r in stored.items()} == dict(position)
    for r in stored.values():
        assert r["net_fen"] == int((r["net"] * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    run = await pool.fetchrow("SELECT fee_income, fee_income_fen FROM settlement_runs WHERE window_id = $1", window.id)
    assert run["fee_income"] == fees
    assert run["fee_income_fen"] == -sum(r["net_fen"] for r in stored.values())
