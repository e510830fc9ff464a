"""Many requests at once against the real database, each through the real transaction boundary."""

import asyncio
from datetime import UTC, datetime, timedelta

import msgspec

from alliance.db import driver_connection, run_in_transaction
from alliance.ledger import AccountKind, LedgerRejected, Rejection
from alliance.ledger import service as ledger


async def committed(db, work):
    """Runs work(conn) in its own committed transaction, as a request would."""

    async def unit(session):
        return await work(await driver_connection(session))

    return await run_in_transaction(db.sessions, unit)


async def attempt(db, work):
    try:
        return await committed(db, work)
    except LedgerRejected as rejected:
        return rejected


async def setup(db, tenant_id, make_books, funds: dict[str, int]):
    async def open_(conn):
        books = await make_books(conn, tenant_id)
        accounts = {}
        for name, amount in funds.items():
            accounts[name] = await books.member()
            if amount:
                await books.credit(accounts[name], amount)
        return books.currency, accounts

    return await committed(db, open_)


async def test_200_racing_debits_never_overdraw(db, tenant_id, make_books):
    currency, accounts = await setup(db, tenant_id, make_books, {"member": 1000})
    member = accounts["member"]

    async def debit(conn):
        redemption = await ledger.system_account(conn, tenant_id, currency.id, AccountKind.REDEMPTION, spread=member)
        return await ledger.transfer(conn, tenant_id, member, redemption, 7, kind="debit")

    results = await asyncio.gather(*(attempt(db, debit) for _ in range(200)))
    refused = [r for r in results if isinstance(r, LedgerRejected)]
    assert all(r.code is Rejection.INSUFFICIENT_POINTS for r in refused)
    assert len(results) - len(refused) == 1000 // 7
    balance = await committed(db, lambda conn: ledger.account_balance(conn, tenant_id, member))
    assert balance.balance == 1000 - 7 * (1000 // 7)
    assert balance.version == 1 + 1000 // 7


async def test_50_requests_with_one_key_make_one_effect_and_one_answer(db, tenant_id, make_books):
    currency, accounts = await setup(db, tenant_id, make_books, {"member": 0})
    member = accounts["member"]

    async def credit(conn):
        issuance = await ledger.system_account(conn, tenant_id, currency.id, AccountKind.ISSUANCE, spread=member)
        return await ledger.transfer(conn, tenant_id, issuance, member, 25, kind="credit", idempotency_key="pos-42")

    results = await asyncio.gather(*(committed(db, credit) for _ in range(50)))
    assert len({r.id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    answers = [msgspec.structs.replace(r, replayed=False) for r in results]
    assert all(answer == answers[0] for answer in answers)
    balance = await committed(db, lambda conn: ledger.account_balance(conn, tenant_id, member))
    assert balance.balance == 25


async def test_concurrent_holds_never_exceed_the_balance(db, tenant_id, make_books):
    _, accounts = await setup(db, tenant_id, make_books, {"member": 500})
    member = accounts["member"]
    deadline = datetime.now(UTC) + timedelta(hours=1)

    async def hold(conn):
        return await ledger.hold(conn, tenant_id, member, 13, expires_at=deadline)

    results = await asyncio.gather(*(attempt(db, hold) for _ in range(100)))
    granted = [r for r in results if not isinstance(r, LedgerRejected)]
    assert len(granted) == 500 // 13
    balance = await committed(db, lambda conn: ledger.account_balance(conn, tenant_id, member))
    assert (balance.balance, balance.held) == (500, 13 * (500 // 13))


async def test_transfers_both_ways_never_deadlock_nor_lose_points(db, tenant_id, make_books):
    _, accounts = await setup(db, tenant_id, make_books, {"a": 300, "b": 300, "c": 300})
    names = list(accounts)

    def move(source, target, amount):
        return lambda conn: ledger.transfer(conn, tenant_id, accounts[source], accounts[target], amount)

    work = [move(names[i % 3], names[(i + 1 + i // 3 % 2) % 3], 1 + i % 9) for i in range(150)]
    results = await asyncio.gather(*(attempt(db, w) for w in work))
    assert all(not isinstance(r, LedgerRejected) or r.code is Rejection.INSUFFICIENT_POINTS for r in results)

    async def balances(conn):
        return [await ledger.account_balance(conn, tenant_id, a) for a in accounts.values()]

    final = await committed(db, balances)
    assert sum(b.balance for b in final) == 900
    assert all(b.balance >= 0 for b in final)


async def test_racing_reversals_of_one_entry_reverse_it_once(db, tenant_id, make_books):
    currency, accounts = await setup(db, tenant_id, make_books, {"member": 100})
    member = accounts["member"]

    async def entry_to_reverse(conn):
        redemption = await ledger.system_account(conn, tenant_id, currency.id, AccountKind.REDEMPTION, spread=1)
        return await ledger.transfer(conn, tenant_id, member, redemption, 60, kind="debit")

    debit = await committed(db, entry_to_reverse)
    results = await asyncio.gather(
        *(attempt(db, lambda conn, i=i: ledger.reverse_entry(conn, tenant_id, debit.id, idempotency_key=f"r{i}"))
          for i in range(20))
    )
    assert sum(not isinstance(r, LedgerRejected) for r in results) == 1
    assert {r.code for r in results if isinstance(r, LedgerRejected)} == {Rejection.ALREADY_REVERSED}
    balance = await committed(db, lambda conn: ledger.account_balance(conn, tenant_id, member))
    assert balance.balance == 100
