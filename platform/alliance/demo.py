"""The demo alliance `alliance up` seeds: a coffee chain, an airline and a supermarket, with members and some
activity, all done through the SDK like a brand's backend would. They are in the exchange (coffee beans and
supermarket points convert into airline miles), each brand with a signing key, and alice and bob have linked their
memberships. Seeded once per data folder (the demo's API and signing keys are kept there, readable only by you);
the short scenario runs on every start."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from alliance_sdk import Alliance, ConflictError, signing

BRANDS = [
    {"code": "coffee-chain", "name": "Coffee Chain", "currency_code": "BEANS", "point_value": "0.10",
     "expiry_days": 365},
    {"code": "airline", "name": "Airline", "currency_code": "MILES", "point_value": "0.05"},
    {"code": "supermarket", "name": "Supermarket", "currency_code": "PTS", "point_value": "0.01",
     "expiry_days": 730},
]
MEMBERS = ["alice", "bob", "chen", "dana"]
# Into airline miles; the rate derives from the point values (a bean is worth two miles), less a 1% fee.
PAIRS = [("coffee-chain", "airline"), ("supermarket", "airline")]
FEE_BPS = 100
NET_DEBIT_CAP = "100000.00"  # CNY a brand may owe the alliance in a settlement window
LINKED = ["alice", "bob"]  # their memberships at all three brands are one alliance identity each


class OutdatedDemo(Exception):
    """The data folder holds a demo seeded by an earlier version, without the exchange."""


def seed(base_url: str, state_file: Path, issue_operator_key: Callable[[], str]) -> dict:
    """Admits the demo brands with members, some history, the exchange and signing keys; returns the state: per
    brand its id, API key, signing key and kid, and the operator's key. A seed cut short is completed on the next
    start."""
    if state_file.exists():
        state = json.loads(state_file.read_text())
        if "operator_key" not in state:
            raise OutdatedDemo(f"the demo in {state_file.parent} predates the exchange and settlement: start with a "
                               "fresh data folder (ALLIANCE_DATA_DIR) to see it")
        return state
    operator_key = issue_operator_key()
    with Alliance(api_key=operator_key, base_url=base_url) as operator:
        existing = {t.code: t for t in operator.admin.tenants.list()}
        brands = {}
        for brand in BRANDS:
            tenant = existing.get(brand["code"]) or operator.admin.tenants.create(**brand)
            brands[brand["code"]] = {"id": tenant.id, "api_key": operator.admin.keys.create(tenant.id, name="demo").secret}
            try:
                operator.admin.exchange.participants.admit(tenant.id, net_debit_cap=NET_DEBIT_CAP)
            except ConflictError:  # admitted by a seed that was cut short
                pass
        for source, target in PAIRS:
            operator.admin.exchange.pairs.open(brands[source]["id"], brands[target]["id"])
            operator.admin.exchange.rate_cards.create(brands[source]["id"], brands[target]["id"], fee_bps=FEE_BPS)
    for code, keys in brands.items():
        with Alliance(api_key=keys["api_key"], base_url=base_url) as brand:
            private_pem, public_jwk = signing.generate_signing_key()
            keys["signing_key"], keys["signing_kid"] = private_pem, f"{code}-demo-{os.urandom(3).hex()}"
            brand.signing_keys.register(keys["signing_kid"], public_jwk)
            for i, member in enumerate(MEMBERS):
                brand.members.upsert(member, nickname=member.capitalize())
                brand.members.credit(member, 1000 * (i + 1), reason="welcome_bonus")
            brand.members.debit("bob", 300, reason="purchase")
    # Each linked person's memberships: a code from the coffee chain, redeemed at the other two.
    with Alliance(api_key=brands["coffee-chain"]["api_key"], base_url=base_url) as coffee:
        for member in LINKED:
            for other in ("airline", "supermarket"):
                with Alliance(api_key=brands[other]["api_key"], base_url=base_url) as brand:
                    try:
                        brand.links.redeem(coffee.links.create_code(member).code, member)
                    except ConflictError:  # linked by a seed that was cut short
                        pass
    state_file.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(state_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    state = {"brands": brands, "operator_key": operator_key}
    with os.fdopen(descriptor, "w") as file:
        json.dump(state, file)
    return state


def _client(base_url: str, keys: dict) -> Alliance:
    return Alliance(api_key=keys["api_key"], base_url=base_url, signing_key=keys["signing_key"],
                    signing_kid=keys["signing_kid"], tenant_id=keys["id"])


def tell_scenario(base_url: str, state: dict, say: Callable[[str], None]) -> None:
    """Earn, gift, hold and capture at the coffee chain; convert beans into miles, and gift some to a friend at
    the airline; everyone's balances; then the operator settles the day, and the coffee chain checks its
    statement."""
    brands = state["brands"]
    with _client(base_url, brands["coffee-chain"]) as coffee:
        earned = coffee.members.credit("alice", 120, reason="purchase", metadata={"order": "latte-x2"})
        say(f"alice earns 120 BEANS for two lattes → {earned.balances['alice']:,}")
        gifted = coffee.members.gift("alice", 50, to="bob")
        say(f"alice gifts 50 BEANS to bob → alice {gifted.balances['alice']:,}, bob {gifted.balances['bob']:,}")
        hold = coffee.members.hold("chen", 400, reason="mug_order", expires_in_seconds=600)
        say(f"chen orders a mug: 400 BEANS held (hold {hold.id})")
        captured = coffee.holds.capture(hold.id, amount=350)
        say(f"the mug ships at 350 BEANS; the other 50 return → chen {captured.balances['chen']:,}")

        quote = coffee.exchange.quote("airline", 500)
        say(f"alice asks for a quote: 500 BEANS → {quote.target_amount:,} MILES (rate {quote.rate}, fee "
            f"{quote.fee_amount} BEANS), locked until {quote.expires_at:%H:%M:%S}")
        converted = coffee.conversions.create("alice", "airline", quote_id=quote.id)
        record = coffee.conversions.verify(converted)
        say(f"alice converts: conversion {converted.id} {converted.status}, {converted.target_amount:,} MILES at "
            f"the airline; the platform's countersignature verifies (net value {record['net_value']} "
            f"{record['currency']} owed to the airline)")
        with _client(base_url, brands["airline"]) as airline:
            bob = airline.links.retrieve("bob")
            gift = coffee.conversions.create("alice", "airline", 200, to_identity=bob.identity)
            say(f"alice gifts 200 BEANS to her friend bob's airline account (his alliance identity "
                f"{bob.identity}): he receives {gift.target_amount:,} MILES")
            seen = airline.conversions.retrieve(gift.id)
            say(f"the airline sees conversion {seen.id} as {seen.role}: {seen.member} +{seen.target_amount:,} MILES")
    for code, keys in brands.items():
        with Alliance(api_key=keys["api_key"], base_url=base_url) as brand:
            balances = ", ".join(f"{m} {brand.members.balance(m).available:,}" for m in MEMBERS)
            say(f"{code}: {balances}")
    _settle_the_day(base_url, state, say)
    say(f"try it: curl -H 'authorization: Bearer {brands['coffee-chain']['api_key']}' "
        f"{base_url}/v1/members/alice/balance")


def _settle_the_day(base_url: str, state: dict, say: Callable[[str], None]) -> None:
    """The cut-off now (normally the nightly job's, just after midnight), the day's settlement and its proof."""
    with Alliance(api_key=state["operator_key"], base_url=base_url) as operator:
        window = operator.admin.settlement.close()
        settled = operator.admin.settlement.compute(window.id)
        operator.admin.settlement.issue_statements(window.id)
    positions = ", ".join(f"{p.brand} {p.net_fen / 100:+,.2f}" for p in settled.positions)
    checks = ", ".join(f"{name} {result}" for name, result in settled.report["checks"].items())
    say(f"the operator closes the day (window {window.id}, {window.business_date}) and settles it: {positions} CNY; "
        f"the alliance keeps {settled.window.fee_income} CNY in fees; checks: {checks}")
    with _client(base_url, state["brands"]["coffee-chain"]) as coffee:
        statement = coffee.settlement.statement(window.id, "pdf")
        coffee.settlement.verify(statement)
        say(f"the coffee chain downloads its statement ({len(statement.content):,} bytes of PDF, version "
            f"{statement.version}): the platform's signature verifies")
