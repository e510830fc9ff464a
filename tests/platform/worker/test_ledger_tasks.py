"""The ledger's expiry tasks: what they expire, the outbox events they leave, the relay sent after commit."""

import json
from datetime import datetime, timedelta

from alliance.db import driver_connection
from alliance.ledger import AccountKind
from alliance.ledger import service as ledger
from alliance.ledger.tasks import expire_holds, expire_points

RELAY_QUEUE = "outbox"
HOUR = timedelta(hours=1)


async def open_member(db, tenant_id: int, *, lot_expires_at: datetime, held: int, hold_expires_at: datetime):
    """A member account credited with one lot of 100 points, `held` of them held; committed."""
    async with db.sessions() as session:
        conn = await driver_connection(session)
        currency = await ledger.open_currency(conn, tenant_id, "PTS", system_shards=2)
        member = await ledger.open_member_account(conn, tenant_id, currency.id)
        issuance = await ledger.system_account(
            conn, tenant_id, currency.id, AccountKind.ISSUANCE, spread=member
        )
        await ledger.transfer(
            conn, tenant_id, issuance, member, 100, kind="credit", expires_at=lot_expires_at
        )
        created = await ledger.hold(conn, tenant_id, member, held, expires_at=hold_expires_at)
        await session.commit()
    return member, created.id


async def outbox(pool, tenant_id: int, event_type: str) -> list[tuple[str, dict]]:
    rows = await pool.fetch(
        """SELECT aggregate_id, payload FROM outbox_events
           WHERE tenant_id = $1 AND event_type = $2 ORDER BY id""",
        tenant_id, event_type,
    )
    return [(r["aggregate_id"], json.loads(r["payload"])) for r in rows]


async def test_expire_points_expires_due_lots_but_never_held_points(db, pool, tenant_id, queue_length):
    now = await pool.fetchval("SELECT now()")
    member, _ = await open_member(
        db, tenant_id, lot_expires_at=now + HOUR, held=30, hold_expires_at=now + 24 * HOUR
    )
    later = (now + 2 * HOUR).isoformat()

    async with db.sessions() as session:
        assert await expire_points(session, as_of=later) >= 1
        assert await queue_length(RELAY_QUEUE) == 0
        await session.commit()
    assert await queue_length(RELAY_QUEUE) == 1  # the relay, sent once the expiry committed

    balance = await ledger.account_balance(pool, tenant_id, member)
    assert (balance.balance, balance.held, balance.available) == (30, 30, 0)
    [(aggregate_id, payload)] = await outbox(pool, tenant_id, "points.expired")
    assert aggregate_id == str(member)
    assert (payload["account_id"], payload["amount"]) == (member, 70)

    async with db.sessions() as session:
        await expire_points(session, as_of=later)  # again: nothing more of this member's is due
        await session.commit()
    assert (await ledger.account_balance(pool, tenant_id, member)).balance == 30
    assert len(await outbox(pool, tenant_id, "points.expired")) == 1


async def test_expire_holds_releases_holds_past_their_deadline(db, pool, tenant_id, queue_length):
    now = await pool.fetchval("SELECT now()")
    member, hold_id = await open_member(
        db, tenant_id, lot_expires_at=now + 24 * HOUR, held=30, hold_expires_at=now + HOUR
    )

    async with db.sessions() as session:
        assert await expire_holds(session, as_of=(now + 2 * HOUR).isoformat()) >= 1
        await session.commit()
    assert await queue_length(RELAY_QUEUE) == 1

    balance = await ledger.account_balance(pool, tenant_id, member)
    assert (balance.balance, balance.held) == (100, 0)
    [(aggregate_id, payload)] = await outbox(pool, tenant_id, "hold.expired")
    assert (aggregate_id, payload["id"], payload["status"]) == (str(member), hold_id, "expired")


async def test_without_as_of_the_database_clock_decides(db, pool, tenant_id):
    now = await pool.fetchval("SELECT now()")
    member, _ = await open_member(
        db, tenant_id, lot_expires_at=now + HOUR, held=10, hold_expires_at=now + HOUR
    )
    async with db.sessions() as session:
        await expire_points(session)
        await expire_holds(session)
        await session.commit()
    balance = await ledger.account_balance(pool, tenant_id, member)
    assert (balance.balance, balance.held) == (100, 10)  # nothing of it is due yet
