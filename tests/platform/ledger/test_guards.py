"""What the database itself refuses, whatever the code above it does."""

import asyncpg
import pytest

from alliance.ledger import AccountKind


async def test_postings_cannot_be_updated_or_deleted(books):
    member = await books.member()
    entry = await books.credit(member, 10)
    for statement in (
        "UPDATE ledger_postings SET amount = amount * 2 WHERE entry_id = $1",
        "DELETE FROM ledger_postings WHERE entry_id = $1",
        "UPDATE ledger_entries SET kind = 'forged' WHERE id = $1",
        "DELETE FROM ledger_entries WHERE id = $1",
    ):
        with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
            async with books.conn.transaction():
                await books.conn.execute(statement, entry.id)


async def test_postings_cannot_be_truncated(conn):
    with pytest.raises(asyncpg.RestrictViolationError):
        async with conn.transaction():
            await conn.execute("TRUNCATE ledger_postings CASCADE")


async def _raw_entry(conn, tenant_id, postings):
    entry_id = await conn.fetchval(
        "INSERT INTO ledger_entries (tenant_id, kind) VALUES ($1, 'raw') RETURNING id", tenant_id
    )
    for account, currency, amount in postings:
        await conn.execute(
            """INSERT INTO ledger_postings (tenant_id, entry_id, account_id, currency_id, amount, balance_after,
                                            version_after, posted_at)
               VALUES ($1, $2, $3, $4, $5::bigint, 0, 1000 + $5::bigint, now())""",
            tenant_id, entry_id, account, currency, amount,
        )


async def test_unbalanced_entry_is_refused_at_commit(books):
    a, b = await books.member(), await books.member()
    ccy = books.currency.id
    for postings in ([(a, ccy, 5), (b, ccy, -4)], [(a, ccy, 5)]):
        with pytest.raises(asyncpg.CheckViolationError, match="unbalanced"):
            async with books.conn.transaction():
                await _raw_entry(books.conn, books.tenant_id, postings)
                await books.conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
    # A balanced raw entry passes the same check.
    async with books.conn.transaction():
        await _raw_entry(books.conn, books.tenant_id, [(a, ccy, 5), (b, ccy, -5)])
        await books.conn.execute("SET CONSTRAINTS ALL IMMEDIATE")


async def test_unbalanced_entry_fails_a_real_commit(pool, tenant_id, make_books):
    async with pool.acquire() as conn:
        books = await make_books(conn, tenant_id)
        a, b = await books.member(), await books.member()
        transaction = conn.transaction()
        await transaction.start()
        await _raw_entry(conn, tenant_id, [(a, books.currency.id, 7), (b, books.currency.id, -6)])
        with pytest.raises(asyncpg.CheckViolationError):
            await transaction.commit()
        assert await conn.fetchval("SELECT count(*) FROM ledger_entries WHERE tenant_id = $1", tenant_id) == 0


async def test_non_negative_account_cannot_go_below_held(books):
    member = await books.member()
    await books.credit(member, 10)
    with pytest.raises(asyncpg.CheckViolationError, match="no_overdraft"):
        async with books.conn.transaction():
            await books.conn.execute("UPDATE ledger_accounts SET balance = -1 WHERE id = $1", member)
    with pytest.raises(asyncpg.CheckViolationError, match="no_overdraft"):
        async with books.conn.transaction():
            await books.conn.execute("UPDATE ledger_accounts SET held = 11 WHERE id = $1", member)


async def test_posting_currency_must_match_its_account(books):
    from alliance.ledger import service as ledger

    other = await ledger.open_currency(books.conn, books.tenant_id, "MILES", system_shards=1)
    member = await books.member()
    issuance = await books.system(AccountKind.ISSUANCE)
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        async with books.conn.transaction():
            await _raw_entry(books.conn, books.tenant_id, [(member, other.id, 5), (issuance, other.id, -5)])
