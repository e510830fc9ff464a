"""The brands of an alliance as the SDK's exchange and settlement tests make them (the fixtures `join` and
`alliance` in conftest.py), and linking a member's memberships across two of them."""

from __future__ import annotations

from dataclasses import dataclass

import alliance_sdk as sdk
from alliance_sdk import Alliance


@dataclass
class Party:
    """A brand of the alliance: its tenant, its API key and signing key, and a client that signs with them."""

    tenant: sdk.Tenant
    api_key: str
    private_key: str
    kid: str
    client: Alliance

    @property
    def code(self) -> str:
        return self.tenant.code

    def options(self) -> dict:
        """What another client of this brand is made with."""
        return {"api_key": self.api_key, "signing_key": self.private_key, "signing_kid": self.kid}


@dataclass
class CoffeeAndAirline:
    """A coffee chain (1 bean = 0.10 CNY) whose points convert into an airline's (1 mile = 0.05 CNY) at the
    derived rate (2 miles a bean) with a 1% fee; alice is a member of both, linked under `identity`, with 10,000
    beans."""

    coffee: Party
    airline: Party
    identity: str


def link(issuer: Party, issuer_member: str, redeemer: Party, redeemer_member: str) -> str:
    """Links two memberships as a member would: a code from one brand, redeemed at the other."""
    code = issuer.client.links.create_code(issuer_member)
    return redeemer.client.links.redeem(code.code, redeemer_member).identity
