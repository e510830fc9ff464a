"""A small set of books for ledger tests: one currency and a few funded-on-demand member accounts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
import pytest

from alliance.ledger import AccountKind, Currency
from alliance.ledger import service as ledger


@dataclass
class Books:
    conn: asyncpg.Connection
    tenant_id: int
    currency: Currency

    async def member(self) -> int:
        return await ledger.open_member_account(self.conn, self.tenant_id, self.currency.id)

    async def system(self, kind: AccountKind, spread: int = 0) -> int:
        return await ledger.system_account(self.conn, self.tenant_id, self.currency.id, kind, spread=spread)

    async def credit(self, account: int, amount: int, *, expires_at: datetime | None = None, **kw):
        issuance = await self.system(AccountKind.ISSUANCE, account)
        return await ledger.transfer(
            self.conn, self.tenant_id, issuance, account, amount, kind="credit", expires_at=expires_at, **kw
        )

    async def debit(self, account: int, amount: int, **kw):
        redemption = await self.system(AccountKind.REDEMPTION, account)
        return await ledger.transfer(self.conn, self.tenant_id, account, redemption, amount, kind="debit", **kw)

    async def balance(self, account: int):
        return await ledger.account_balance(self.conn, self.tenant_id, account)


async def open_books(conn: asyncpg.Connection, tenant_id: int) -> Books:
    currency = await ledger.open_currency(conn, tenant_id, "PTS", system_shards=4)
    return Books(conn, tenant_id, currency)


@pytest.fixture
async def books(conn: asyncpg.Connection, tenant_id: int) -> Books:
    return await open_books(conn, tenant_id)


@pytest.fixture
def make_books():
    """For tests that commit: open books on a connection of their own."""
    return open_books
