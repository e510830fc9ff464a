"""Property-based: random programs of ledger operations keep every invariant after every step.

Invariants checked after each operation, on the real database:
  * per currency, all postings sum to zero (so do the account balances);
  * each account's balance is the sum of its postings, and its latest posting's balance_after;
  * each member account's balance is the sum of its open lots, and its held amount the sum of its
    pending holds;
  * no member balance is ever negative, nor below what it holds;
and each debit succeeds exactly when the member can afford it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alliance.ledger import AccountKind, LedgerRejected, Rejection
from alliance.ledger import service as ledger

MEMBERS = 3
amounts = st.integers(min_value=1, max_value=120)
member = st.integers(min_value=0, max_value=MEMBERS - 1)
# Lots expire in 1 or 2 hours, or never; the expiry step runs the job as of 1.5 or 3 hours from now.
expiry = st.sampled_from([None, 1, 2])

operation = st.one_of(
    st.tuples(st.just("credit"), member, amounts, expiry),
    st.tuples(st.just("debit"), member, amounts),
    st.tuples(st.just("transfer"), member, member, amounts),
    st.tuples(st.just("hold"), member, amounts, st.sampled_from([1, 4])),
    st.tuples(st.just("post"), st.integers(0, 20), st.floats(0.01, 1.0)),
    st.tuples(st.just("void"), st.integers(0, 20)),
    st.tuples(st.just("expire_lots"), st.sampled_from([1.5, 3])),
    st.tuples(st.just("expire_holds"), st.sampled_from([2, 5])),
    st.tuples(st.just("reverse"), st.integers(0, 40)),
)


def later(hours: float) -> datetime:
    return datetime.now(UTC) + timedelta(hours=hours)


async def check_invariants(conn, tenant_id: int) -> None:
    unbalanced = await conn.fetch(
        """SELECT currency_id, sum(amount) FROM ledger_postings WHERE tenant_id = $1
           GROUP BY currency_id HAVING sum(amount) <> 0""",
        tenant_id,
    )
    assert not unbalanced, unbalanced
    rows = await conn.fetch(
        """SELECT a.id, a.kind, a.balance, a.held, a.version,
                  (SELECT coalesce(sum(amount), 0) FROM ledger_postings p
                    WHERE p.tenant_id = a.tenant_id AND p.account_id = a.id) AS posted,
                  (SELECT balance_after FROM ledger_postings p
                    WHERE p.tenant_id = a.tenant_id AND p.account_id = a.id
                    ORDER BY version_after DESC LIMIT 1) AS last_balance,
                  (SELECT coalesce(sum(remaining), 0) FROM ledger_lots l
                    WHERE l.tenant_id = a.tenant_id AND l.account_id = a.id) AS in_lots,
                  (SELECT coalesce(sum(amount), 0) FROM ledger_holds h
                    WHERE h.tenant_id = a.tenant_id AND h.account_id = a.id AND h.status = 'pending') AS pending
           FROM ledger_accounts a WHERE a.tenant_id = $1""",
        tenant_id,
    )
    assert sum(r["balance"] for r in rows) == 0
    for r in rows:
        assert r["balance"] == r["posted"] == (r["last_balance"] or 0), dict(r)
        if r["kind"] == "member":
            assert r["balance"] == r["in_lots"], dict(r)
            assert r["held"] == r["pending"], dict(r)
            assert r["balance"] >= r["held"] >= 0, dict(r)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(program=st.lists(operation, min_size=10, max_size=40))
async def test_random_programs_keep_every_invariant(pool, make_books, program):
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            tenant_id = await conn.fetchval("SELECT 900000000 + nextval('ledger_entries_id_seq')")
            books = await make_books(conn, tenant_id)
            members = [await books.member() for _ in range(MEMBERS)]
            redemption = await books.system(AccountKind.REDEMPTION)
            holds: list[int] = []
            entries: list[int] = []
            for step in program:
                await run_step(books, conn, tenant_id, members, redemption, holds, entries, step)
                await check_invariants(conn, tenant_id)
            await conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
        finally:
            await transaction.rollback()


async def run_step(books, conn, tenant_id, members, redemption, holds, entries, step) -> None:
    name, *args = step
    try:
        if name == "credit":
            who, amount, hours = args
            entry = await books.credit(members[who], amount, expires_at=None if hours is None else later(hours))
            entries.append(entry.id)
        elif name == "debit":
            who, amount = args
            available = (await books.balance(members[who])).available
            try:
                entries.append((await books.debit(members[who], amount)).id)
                assert amount <= available
            except LedgerRejected as refused:
                assert refused.code is Rejection.INSUFFICIENT_POINTS and amount > available
        elif name == "transfer":
            source, target, amount = args
            if source != target:
                entry = await ledger.transfer(conn, tenant_id, members[source], members[target], amount)
                entries.append(entry.id)
        elif name == "hold":
            who, amount, hours = args
            holds.append((await ledger.hold(conn, tenant_id, members[who], amount, expires_at=later(hours))).id)
        elif name == "post" and holds:
            index, fraction = args
            hold = await conn.fetchrow("SELECT amount FROM ledger_holds WHERE id = $1", holds[index % len(holds)])
            capture = max(1, int(hold["amount"] * fraction))
            entry, _ = await ledger.post_hold(conn, tenant_id, holds[index % len(holds)], redemption, amount=capture)
            entries.append(entry.id)
        elif name == "void" and holds:
            await ledger.void_hold(conn, tenant_id, holds[args[0] % len(holds)])
        elif name == "expire_lots":
            await ledger.expire_lots(conn, later(args[0]))
        elif name == "expire_holds":
            await ledger.expire_holds(conn, later(args[0]))
        elif name == "reverse" and entries:
            entries.append((await ledger.reverse_entry(conn, tenant_id, entries[args[0] % len(entries)])).id)
    except LedgerRejected as refused:
        # Only refusals that follow from the state are acceptable; anything else is a bug.
        assert refused.code in {
            Rejection.INSUFFICIENT_POINTS, Rejection.HOLD_NOT_PENDING, Rejection.ALREADY_REVERSED,
            Rejection.ENTRY_IS_REVERSAL,
        }, refused


async def books_state(conn, tenant_id: int) -> tuple:
    """Everything the books hold, with ids replaced by what they name: a member account by its order, a system
    account by its kind (two runs number rows differently, so their hot accounts map to different shards)."""
    accounts = await conn.fetch("SELECT id, kind, balance, held, version FROM ledger_accounts WHERE tenant_id = $1"
                                " ORDER BY id", tenant_id)
    members = [a["id"] for a in accounts if a["kind"] == "member"]
    name = {a["id"]: a["kind"] if a["kind"] != "member" else f"member {members.index(a['id'])}" for a in accounts}
    systems: dict[str, list[int]] = {}
    for a in accounts:
        if a["kind"] != "member":
            totals = systems.setdefault(a["kind"], [0, 0, 0])
            for i, column in enumerate(("balance", "held", "version")):
                totals[i] += a[column]
    return (
        [(name[a["id"]], a["balance"], a["held"], a["version"]) for a in accounts if a["kind"] == "member"],
        systems,
        [(name[r["account_id"]], r["amount"], r["lots"],
          *((r["balance_after"], r["version_after"]) if name[r["account_id"]].startswith("member") else ()))
         for r in await conn.fetch("SELECT account_id, amount, balance_after, version_after, lots::text"
                                   " FROM ledger_postings WHERE tenant_id = $1 ORDER BY id", tenant_id)],
        [(name[r["account_id"]], r["expires_at"], r["remaining"], r["credited"]) for r in await conn.fetch(
            "SELECT account_id, expires_at, remaining, credited FROM ledger_lots WHERE tenant_id = $1"
            " ORDER BY account_id, expires_at NULLS LAST, id", tenant_id)],
        [(name[r["account_id"]], r["amount"], r["status"], r["posted_amount"]) for r in await conn.fetch(
            "SELECT account_id, amount, status, posted_amount FROM ledger_holds WHERE tenant_id = $1 ORDER BY id",
            tenant_id)],
        [tuple(r) for r in await conn.fetch("SELECT kind, reverses_entry_id IS NOT NULL FROM ledger_entries"
                                            " WHERE tenant_id = $1 ORDER BY id", tenant_id)],
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(program=st.lists(operation, min_size=10, max_size=30))
async def test_the_transfer_fast_path_writes_what_the_general_path_writes(pool, make_books, program, monkeypatch):
    """Migration 0006 gives two-posting entries a fast path; the same program run with it and with the general path
    (the session setting alliance.ledger_general_path) leaves the same books after every step."""
    import sys

    start = datetime.now(UTC)
    monkeypatch.setattr(sys.modules[__name__], "later", lambda hours: start + timedelta(hours=hours))
    runs = []
    for general in (False, True):
        async with pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            try:
                await conn.execute(f"SET LOCAL alliance.ledger_general_path = {'on' if general else 'off'}")
                tenant_id = 800_000_000
                books = await make_books(conn, tenant_id)
                members = [await books.member() for _ in range(MEMBERS)]
                redemption = await books.system(AccountKind.REDEMPTION)
                holds: list[int] = []
                entries: list[int] = []
                states = []
                for step in program:
                    await run_step(books, conn, tenant_id, members, redemption, holds, entries, step)
                    states.append(await books_state(conn, tenant_id))
                runs.append(states)
            finally:
                await transaction.rollback()
    for step, (fast, general) in enumerate(zip(*runs, strict=True)):
        for part, name in enumerate(("members", "system accounts", "postings", "lots", "holds", "entries")):
            assert fast[part] == general[part], (step, program[step], name)
