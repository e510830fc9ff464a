"""Property-based: over random point values, rate cards and amounts, pricing never gives the member more value
than was debited less the fee; and random programs of conversions (at once, reserved, committed, aborted,
expired) across three brands agree with a model of the exchange after every step, keeping every invariant.

Checked on the real database after each step:
  * per brand, the ledger sums to zero; members' balances and holds are what the model says;
  * each brand's position (reserved, debits, credits, fees) is the sum of its conversions, within its cap;
  * each brand's clearing accounts hold exactly the points it took in less the points it issued;
  * each refusal is the one the model predicts, in the order the exchange checks them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alliance.calendar import business_date
from alliance.errors import ProblemError
from exchange.conversions import service
from exchange.conversions.schemas import ConversionAbort, ConversionCreate
from tests.exchange_fixtures import accepted_signature

TWELVE_PLACES = Decimal("1e-12")


def decimals(low: str, high: str, places: int):
    return st.decimals(min_value=Decimal(low), max_value=Decimal(high), places=places, allow_nan=False,
                       allow_infinity=False)


point_values = decimals("0.0001", "50", 4)


# --- pricing ------------------------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(source_value=point_values, target_value=point_values, amount=st.integers(1, 10**12),
       fee_bps=st.integers(0, 9999), explicit_rate=st.one_of(st.none(), decimals("0.000001", "1000", 6)))
async def test_pricing_never_pays_out_more_than_it_takes_in(conn, source_value, target_value, amount, fee_bps,
                                                           explicit_rate):
    card = ("ROW(1, 1, 2, 1, now(), $1::numeric, $2, 1, 1000000000000, NULL, NULL, 30, now())"
            "::exchange_rate_cards")
    try:
        async with conn.transaction():  # a savepoint: a refusal aborts only it
            price = await conn.fetchrow(f"SELECT (exchange__price_amounts({card}, $3, $4, $5, 'CNY')).*",
                                        explicit_rate, fee_bps, amount, source_value, target_value)
    except asyncpg.PostgresError as refused:
        assert refused.sqlstate == "AL001", refused
        code = refused.args[0]
        rate = explicit_rate if explicit_rate is not None else (source_value / target_value).quantize(
            TWELVE_PLACES, rounding=ROUND_DOWN)
        if code == "rate_exceeds_point_values":
            assert explicit_rate is not None and explicit_rate * target_value > source_value
        else:
            fee = (Decimal(amount * fee_bps) / 10_000).to_integral_value(rounding=ROUND_CEILING)
            assert code == "amount_too_small" and (amount - fee) * rate < 1, (code, rate, fee)
        return
    assert price["fee_amount"] == (Decimal(amount * fee_bps) / 10_000).to_integral_value(rounding=ROUND_CEILING)
    if explicit_rate is not None:
        assert price["rate"] == explicit_rate
    else:  # the derived rate is truncated: never above the exact ratio
        exact_ratio = source_value / target_value
        assert exact_ratio - TWELVE_PLACES <= price["rate"] <= exact_ratio
    net = amount - price["fee_amount"]
    exact = net * price["rate"]
    assert price["target_amount"] == exact.to_integral_value(rounding=ROUND_FLOOR) >= 1
    assert price["remainder"] == exact - price["target_amount"] and 0 <= price["remainder"] < 1
    # The member never receives more value than was debited less the fee.
    assert price["target_amount"] * target_value <= net * source_value


# --- random programs against a model --------------------------------------------------------------------------

PERSONS = 2
BRANDS = 3
PAIRS = [(0, 1), (1, 2), (2, 0)]  # open; 0 -> 2 is not (refused as pair_not_open)

brand_index = st.integers(0, BRANDS - 1)
operation = st.one_of(
    st.tuples(st.just("convert"), st.integers(0, PERSONS - 1), brand_index, brand_index, st.integers(1, 900),
              st.booleans()),
    st.tuples(st.just("commit"), st.integers(0, 30)),
    st.tuples(st.just("abort"), st.integers(0, 30)),
    st.tuples(st.just("expire"), st.integers(0, 30)),
)
card = st.fixed_dictionaries({
    "fee_bps": st.sampled_from([0, 50, 250, 1000]),
    "explicit_rate": st.booleans(),
    "min_amount": st.sampled_from([1, 20]),
    "max_amount": st.sampled_from([500, 100_000]),
    "member_daily_limit": st.sampled_from([None, 800, 2000]),
    "pair_daily_cap": st.sampled_from([None, 1500]),
})
alliance = st.fixed_dictionaries({
    "values": st.lists(st.sampled_from(["0.01", "0.05", "0.07", "0.1", "0.3", "1"]), min_size=BRANDS,
                       max_size=BRANDS),
    "caps": st.lists(st.sampled_from(["30", "100", "1000"]), min_size=BRANDS, max_size=BRANDS),
    "cards": st.lists(card, min_size=len(PAIRS), max_size=len(PAIRS)),
    "credits": st.lists(st.integers(0, 3000), min_size=BRANDS * PERSONS, max_size=BRANDS * PERSONS),
})


@dataclass
class Model:
    values: list[Decimal]
    caps: list[Decimal]
    cards: dict[tuple[int, int], dict]
    balance: dict[tuple[int, int], int]  # (brand, person) -> points
    held: dict[tuple[int, int], int] = field(default_factory=dict)
    reserved: dict[int, Decimal] = field(default_factory=dict)
    debits: dict[int, Decimal] = field(default_factory=dict)
    credits: dict[int, Decimal] = field(default_factory=dict)
    fees: dict[int, Decimal] = field(default_factory=dict)
    clearing: dict[int, int] = field(default_factory=dict)  # points taken in less points issued
    member_usage: dict[tuple[int, int, int], int] = field(default_factory=dict)
    pair_usage: dict[tuple[int, int], int] = field(default_factory=dict)
    open: dict[int, dict] = field(default_factory=dict)  # reserved conversions by id

    def get(self, table: dict, key, zero=0):
        return table.get(key, zero)

    def net_debit(self, brand: int) -> Decimal:
        return self.get(self.reserved, brand, Decimal(0)) + self.get(self.debits, brand, Decimal(0)) - self.get(
            self.credits, brand, Decimal(0))

    def refusal(self, person: int, source: int, target: int, amount: int) -> str | None:
        """What the exchange must refuse this conversion with, checking in its order; None: it goes through."""
        if (source, target) not in self.cards:
            return "pair_not_open"
        card = self.cards[source, target]
        if not card["min_amount"] <= amount <= card["max_amount"]:
            return "amount_out_of_range"
        rate = card["rate"] or (self.values[source] / self.values[target]).quantize(TWELVE_PLACES, rounding=ROUND_DOWN)
        fee = -(-amount * card["fee_bps"] // 10_000)
        if (amount - fee) * rate < 1:
            return "amount_too_small"
        limit = card["member_daily_limit"]
        if limit is not None and self.get(self.member_usage, (source, target, person)) + amount > limit:
            return "member_daily_limit_exceeded"
        cap = card["pair_daily_cap"]
        if cap is not None and self.get(self.pair_usage, (source, target)) + amount > cap:
            return "pair_daily_cap_exceeded"
        if self.balance[source, person] - self.get(self.held, (source, person)) < amount:
            return "insufficient_points"
        # The positions come last (they are the hottest rows: held only from the end of the operation).
        if self.net_debit(source) + amount * self.values[source] > self.caps[source]:
            return "net_debit_cap_exceeded"
        return None

    def count(self, c: dict, sign: int) -> None:
        card = self.cards[c["source"], c["target"]]
        if card["member_daily_limit"] is not None:
            key = (c["source"], c["target"], c["person"])
            self.member_usage[key] = self.get(self.member_usage, key) + sign * c["amount"]
        if card["pair_daily_cap"] is not None:
            key = (c["source"], c["target"])
            self.pair_usage[key] = self.get(self.pair_usage, key) + sign * c["amount"]

    def add(self, table: dict, key, delta) -> None:
        table[key] = table.get(key, 0) + delta

    def reserve(self, c: dict) -> None:
        self.add(self.held, (c["source"], c["person"]), c["amount"])
        self.add(self.reserved, c["source"], c["gross"])
        self.open[c["id"]] = c

    def release(self, c: dict) -> None:
        """A reservation ends (committed, aborted or expired): its points and value are no longer held."""
        self.add(self.held, (c["source"], c["person"]), -c["amount"])
        self.add(self.reserved, c["source"], -c["gross"])

    def commit(self, c: dict) -> None:
        source, target, person = c["source"], c["target"], c["person"]
        self.add(self.balance, (source, person), -c["amount"])
        self.add(self.balance, (target, person), c["target_amount"])
        self.add(self.debits, source, c["gross"])
        self.add(self.fees, source, c["fee_value"])
        self.add(self.credits, target, c["net"])
        self.add(self.clearing, source, c["amount"])
        self.add(self.clearing, target, -c["target_amount"])


async def build(world: dict, exchange_brand, open_pair, member, link) -> tuple[list, Model]:
    values = [Decimal(v) for v in world["values"]]
    brands = [await exchange_brand(point_value=v, cap=c) for v, c in zip(world["values"], world["caps"], strict=True)]
    cards = {}
    for (source, target), params in zip(PAIRS, world["cards"], strict=True):
        # An explicit rate, when asked for, is one the point values allow: 90% of the ratio.
        rate = (values[source] / values[target] * Decimal("0.9")).quantize(Decimal("1e-6"), rounding=ROUND_DOWN) \
            if params["explicit_rate"] else None
        body = {k: v for k, v in params.items() if k != "explicit_rate" and v is not None}
        await open_pair(brands[source], brands[target], **body, **({"rate": str(rate)} if rate else {}))
        cards[source, target] = {**params, "rate": rate}
    balance = {}
    for b, brand in enumerate(brands):
        for p in range(PERSONS):
            points = world["credits"][b * PERSONS + p]
            await member(brand, f"p{p}", points)
            balance[b, p] = points
    for p in range(PERSONS):
        await link(brands[0], f"p{p}", brands[1], f"p{p}")
        await link(brands[0], f"p{p}", brands[2], f"p{p}")
    return brands, Model(values=values, caps=[Decimal(c) for c in world["caps"]], cards=cards, balance=balance)


async def check(pool, brands, model: Model) -> None:
    ids = [b.id for b in brands]
    for b, brand in enumerate(brands):
        accounts = await pool.fetch(
            """SELECT a.kind, a.balance, a.held, m.external_id FROM ledger_accounts a
               LEFT JOIN members m ON m.tenant_id = a.tenant_id AND m.account_id = a.id WHERE a.tenant_id = $1""",
            brand.id)
        assert sum(a["balance"] for a in accounts) == 0
        for a in accounts:
            if a["kind"] == "member":
                person = int(a["external_id"][1:])
                assert (a["balance"], a["held"]) == (model.balance[b, person], model.get(model.held, (b, person)))
        assert sum(a["balance"] for a in accounts if a["kind"] == "clearing") == model.get(model.clearing, b)
        position = await pool.fetchrow("SELECT reserved, debits, exchange__credits(tenant_id) AS credits, fees"
                                       " FROM exchange_positions WHERE tenant_id = $1", brand.id)
        assert tuple(position) == tuple(model.get(t, b, Decimal(0)) for t in (model.reserved, model.debits,
                                                                              model.credits, model.fees))
        assert position["reserved"] + position["debits"] - position["credits"] <= model.caps[b]
    unfair = await pool.fetchval(
        """SELECT count(*) FROM exchange_conversions WHERE tenant_id = ANY($1)
           AND (target_amount * target_point_value > net_value OR gross_value <> net_value + fee_value)""", ids)
    assert unfair == 0


async def run_convert(conn, brands, model: Model, today, step) -> int | None:
    """Converts as the step says, on the exchange and in the model; the conversion's id, or None when the exchange
    refused it (as the model predicted) or the step converts within one brand (skipped)."""
    _, person, source, target, amount, commit = step
    if source == target:
        return None
    expected = model.refusal(person, source, target, amount)
    try:
        row, _ = await service.convert(
            conn, brands[source].id,
            ConversionCreate(member=f"p{person}", to_brand=brands[target].code, amount=amount, commit=commit),
            accepted_signature(brands[source]), target_tenant_id=brands[target].id,
            idempotency_key=uuid.uuid4().hex, business_date=today)
    except ProblemError as refused:
        assert refused.code == expected, (refused.code, refused.extra, step)
        return None
    assert expected is None, (expected, step)
    c = {"id": row.id, "person": person, "source": source, "target": target, "amount": amount,
         "target_amount": row.target_amount, "gross": row.gross_value, "fee_value": row.fee_value,
         "net": row.net_value}
    assert row.gross_value == amount * model.values[source]
    model.count(c, +1)
    if commit:
        model.commit(c)
    else:
        model.reserve(c)
    return row.id


async def run_resolution(conn, brands, model: Model, conversions: list[int], step) -> bool:
    """Commits, aborts or expires one of the conversions made so far, on the exchange and in the model; False when
    the exchange refused it (as it must: the conversion is no longer reserved)."""
    name, index = step
    conversion_id = conversions[index % len(conversions)]
    c = model.open.pop(conversion_id, None)
    if name == "expire":
        await conn.execute("UPDATE exchange_conversions SET expires_at = now() - interval '1 s'"
                           " WHERE id = $1 AND status = 'reserved'", conversion_id)
        await service.expire_due(conn, datetime.now(UTC))
    else:
        source = brands[0] if c is None else brands[c["source"]]
        try:
            await service.resolve(conn, source.id, conversion_id, accepted_signature(source),
                                  abort=ConversionAbort() if name == "abort" else None,
                                  idempotency_key=uuid.uuid4().hex)
        except ProblemError as refused:
            assert c is None and refused.code in ("conversion_not_reserved", "conversion_not_found"), (
                refused.code, step)
            return False
    if c is not None:
        model.release(c)
        if name == "commit":
            model.commit(c)
        else:
            model.count(c, -1)
    return True


async def run_step(conn, brands, model: Model, conversions: list[int], today, step) -> bool:
    """Runs one step of the program; False when it changed nothing (refused or skipped), so there is nothing new to
    check."""
    if step[0] == "convert":
        conversion_id = await run_convert(conn, brands, model, today, step)
        if conversion_id is None:
            return False
        conversions.append(conversion_id)
        return True
    if conversions:
        return await run_resolution(conn, brands, model, conversions, step)
    return True


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(world=alliance, program=st.lists(operation, min_size=5, max_size=18))
async def test_random_programs_agree_with_the_model(pool, exchange_brand, open_pair, member, link, world, program):
    brands, model = await build(world, exchange_brand, open_pair, member, link)
    today = business_date()
    conversions: list[int] = []
    async with pool.acquire() as conn:
        for step in program:
            if await run_step(conn, brands, model, conversions, today, step):
                await check(pool, brands, model)


@pytest.fixture(autouse=True)
def _quiet_http_logs(caplog):
    caplog.set_level("WARNING")
