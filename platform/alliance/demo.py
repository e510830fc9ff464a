"""The demo alliance `alliance up` seeds: a coffee chain, an airline and a supermarket, with members and some
activity, all done through the SDK like a brand's backend would. Seeded once per data folder (the demo's
keys are kept there, readable only by you); the short scenario runs on every start."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from alliance_sdk import Alliance

BRANDS = [
    {"code": "coffee-chain", "name": "Coffee Chain", "currency_code": "BEANS", "point_value": "0.10",
     "expiry_days": 365},
    {"code": "airline", "name": "Airline", "currency_code": "MILES", "point_value": "0.05"},
    {"code": "supermarket", "name": "Supermarket", "currency_code": "PTS", "point_value": "0.01",
     "expiry_days": 730},
]
MEMBERS = ["alice", "bob", "chen", "dana"]


def seed(base_url: str, state_file: Path, issue_operator_key: Callable[[], str]) -> dict[str, str]:
    """Admits the demo brands with members and some history; returns {brand code: brand key}."""
    if state_file.exists():
        return json.loads(state_file.read_text())["brand_keys"]
    with Alliance(api_key=issue_operator_key(), base_url=base_url) as operator:
        existing = {t.code: t for t in operator.admin.tenants.list()}
        keys = {}
        for brand in BRANDS:
            tenant = existing.get(brand["code"]) or operator.admin.tenants.create(**brand)
            keys[brand["code"]] = operator.admin.keys.create(tenant.id, name="demo").secret
    for key in keys.values():
        with Alliance(api_key=key, base_url=base_url) as brand:
            for i, member in enumerate(MEMBERS):
                brand.members.upsert(member, nickname=member.capitalize())
                brand.members.credit(member, 1000 * (i + 1), reason="welcome_bonus")
            brand.members.debit("bob", 300, reason="purchase")
    state_file.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(state_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump({"brand_keys": keys}, file)
    return keys


def tell_scenario(base_url: str, brand_keys: dict[str, str], say: Callable[[str], None]) -> None:
    """Earn, gift, hold and capture at the coffee chain, then everyone's balances."""
    with Alliance(api_key=brand_keys["coffee-chain"], base_url=base_url) as coffee:
        earned = coffee.members.credit("alice", 120, reason="purchase", metadata={"order": "latte-x2"})
        say(f"alice earns 120 BEANS for two lattes → {earned.balances['alice']:,}")
        gifted = coffee.members.gift("alice", 50, to="bob")
        say(f"alice gifts 50 BEANS to bob → alice {gifted.balances['alice']:,}, bob {gifted.balances['bob']:,}")
        hold = coffee.members.hold("chen", 400, reason="mug_order", expires_in_seconds=600)
        say(f"chen orders a mug: 400 BEANS held (hold {hold.id})")
        captured = coffee.holds.capture(hold.id, amount=350)
        say(f"the mug ships at 350 BEANS; the other 50 return → chen {captured.balances['chen']:,}")
    for code, key in brand_keys.items():
        with Alliance(api_key=key, base_url=base_url) as brand:
            balances = ", ".join(f"{m} {brand.members.balance(m).available:,}" for m in MEMBERS)
            say(f"{code}: {balances}")
    say(f"try it: curl -H 'authorization: Bearer {brand_keys['coffee-chain']}' "
        f"{base_url}/v1/members/alice/balance")
