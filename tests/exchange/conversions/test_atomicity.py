"""Both legs or neither: a commit is one statement, one transaction. Killing its connection while it runs (here at
two points: with both positions written but no leg yet, and with both legs written but the outcome not yet
recorded) leaves everything as it was, and the conversion can still be committed."""

from __future__ import annotations

import uuid

from exchange.conversions import service
from tests.backends import kill_while_blocked
from tests.exchange_fixtures import accepted_signature


async def snapshot(pool, coffee, airline, conversion_id):
    return (
        await pool.fetchrow("SELECT status, source_entry_id, target_entry_id FROM exchange_conversions WHERE id = $1",
                            conversion_id),
        [tuple(r) for r in await pool.fetch("SELECT tenant_id, reserved, debits, exchange__credits(tenant_id)"
                                            " FROM exchange_positions WHERE tenant_id = ANY($1) ORDER BY tenant_id",
                                            [coffee.id, airline.id])],
        [tuple(r) for r in await pool.fetch("SELECT tenant_id, id, balance, held, version FROM ledger_accounts"
                                            " WHERE tenant_id = ANY($1) ORDER BY tenant_id, id",
                                            [coffee.id, airline.id])],
        await pool.fetchval("SELECT count(*) FROM ledger_entries WHERE tenant_id = ANY($1)", [coffee.id, airline.id]),
        await pool.fetchval("SELECT h.status FROM ledger_holds h JOIN exchange_conversions c"
                            " ON c.tenant_id = h.tenant_id AND c.hold_id = h.id WHERE c.id = $1", conversion_id),
    )


async def commit_then_kill(pool, coffee, conversion_id, *, blocker_sql: str, blocker_args: tuple,
                           key: str | None = None):
    """Starts the commit while another transaction holds what it will need and kills it there."""
    def commit(committer):
        return service.resolve(committer, coffee.id, conversion_id, accepted_signature(coffee), abort=None,
                               idempotency_key=key or uuid.uuid4().hex)

    await kill_while_blocked(pool, blocker_sql=blocker_sql, blocker_args=blocker_args, work=commit)


async def reserve(convert, coffee, airline) -> int:
    response = await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 1000, "commit": False})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def test_killed_before_the_legs_with_the_positions_written(pool, coffee_and_airline, convert, resolve):
    coffee, airline, _, _ = coffee_and_airline
    conversion_id = await reserve(convert, coffee, airline)
    before = await snapshot(pool, coffee, airline, conversion_id)
    member_account = await pool.fetchval("SELECT account_id FROM members WHERE tenant_id = $1 AND external_id = $2",
                                         airline.id, "alice-air")
    # The receiving member's account is locked elsewhere: the commit has updated both positions when it waits.
    await commit_then_kill(pool, coffee, conversion_id, blocker_args=(airline.id, member_account),
                           blocker_sql="SELECT 1 FROM ledger_accounts WHERE tenant_id = $1 AND id = $2 FOR UPDATE")
    assert await snapshot(pool, coffee, airline, conversion_id) == before
    committed = await resolve(coffee, conversion_id)
    assert committed.json()["status"] == "committed", committed.text


async def test_killed_with_both_legs_written(pool, coffee_and_airline, convert, resolve):
    coffee, airline, _, _ = coffee_and_airline
    conversion_id = await reserve(convert, coffee, airline)
    before = await snapshot(pool, coffee, airline, conversion_id)
    key = uuid.uuid4().hex
    # Another transaction has written (not committed) an outcome under the commit's idempotency key: the commit
    # writes both legs, its events and its signed request, and then waits to record its own outcome.
    await commit_then_kill(
        pool, coffee, conversion_id, key=key, blocker_args=(coffee.id, key),
        blocker_sql="INSERT INTO ledger_idempotency (tenant_id, key, request_hash, outcome) VALUES ($1, $2, '', '{}')")
    assert await snapshot(pool, coffee, airline, conversion_id) == before
    assert await pool.fetchval("SELECT count(*) FROM exchange_signed_requests WHERE conversion_id = $1",
                               conversion_id) == 1  # the reservation's only
    committed = await resolve(coffee, conversion_id, key=key)
    assert committed.json()["status"] == "committed", committed.text
    assert await pool.fetchval("SELECT count(*) FROM ledger_entries WHERE tenant_id = ANY($1) AND kind LIKE"
                               " 'conversion_%' AND metadata->>'conversion_id' = $2",
                               [coffee.id, airline.id], str(conversion_id)) == 2
