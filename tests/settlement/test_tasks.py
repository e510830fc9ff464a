"""The nightly settlement job: it closes the day that is over, computes and states it; run again it changes
nothing; cut short at any point (here: its connection killed in the middle of the computation) it leaves
nothing half-done, and the next run produces exactly what an uninterrupted one would have."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alliance.db import run_in_transaction
from settlement import service, tasks
from tests.backends import kill_while_blocked
from tests.settlement.helpers import close


async def open_window_date(pool):
    return await pool.fetchval("SELECT business_date FROM exchange_windows WHERE status = 'open'")


async def settlement_rows(pool, window_id: int) -> tuple:
    return (
        [tuple(r) for r in await pool.fetch("SELECT * FROM settlement_flows WHERE window_id = $1 ORDER BY 2, 3",
                                            window_id)],
        [tuple(r)[:9] for r in await pool.fetch("SELECT * FROM settlement_positions WHERE window_id = $1 ORDER BY 2",
                                                window_id)],
        await pool.fetchval("SELECT count(*) FROM settlement_statements WHERE window_id = $1", window_id),
        await pool.fetchval("SELECT status FROM exchange_windows WHERE id = $1", window_id),
    )


@pytest.fixture
def the_day_is_over(pool, monkeypatch):
    """Makes the job see the open window's business day as over."""

    async def make() -> None:
        over = await open_window_date(pool) + timedelta(days=1)
        monkeypatch.setattr(tasks, "business_date", lambda: over)

    return make


async def test_the_nightly_run_settles_the_day_and_runs_again_as_a_no_op(db, pool, admin, coffee_and_airline, convert,
                                                                        the_day_is_over):
    coffee, airline, _, _ = coffee_and_airline
    await close(admin)
    await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 500})
    day = await pool.fetchval("SELECT id FROM exchange_windows WHERE status = 'open'")
    nothing_to_do = await run_in_transaction(db.sessions, tasks.settle)  # the day is not over yet
    assert day not in nothing_to_do["closed"]
    await the_day_is_over()
    done = await run_in_transaction(db.sessions, tasks.settle)
    assert (day in done["closed"], day in done["computed"], day in done["stated"]) == (True, True, True)
    after = await settlement_rows(pool, day)
    assert after[3] == "pending_settlement" and after[2] == 4  # two brands, CSV and PDF
    again = await run_in_transaction(db.sessions, tasks.settle)
    assert day not in again["closed"] + again["computed"] + again["stated"]
    assert await settlement_rows(pool, day) == after


async def test_a_computation_cut_short_resumes_to_the_identical_result(db, pool, admin, coffee_and_airline, convert):
    coffee, airline, _, _ = coffee_and_airline
    await close(admin)
    for amount in (100, 250, 999):
        await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": amount})
    day = (await close(admin))["id"]

    # What an uninterrupted computation gives, computed and rolled back.
    class DryRun(Exception):
        pass

    expected = None

    async def dry(session):
        nonlocal expected
        await service.compute(session, day)
        await session.flush()
        expected = await service.get_settlement(session, day)
        raise DryRun

    with pytest.raises(DryRun):
        await run_in_transaction(db.sessions, dry)
    assert await settlement_rows(pool, day) == ([], [], 0, "closed")  # the dry run kept nothing

    # Cut short: another transaction holds a row the computation must write, and the computation's backend is
    # terminated while it waits for it, its flows written already.
    await kill_while_blocked(
        pool, blocker_sql="INSERT INTO settlement_runs (window_id, conversions, fee_income, fee_income_fen, report)"
                          " VALUES ($1, 0, 0, 0, '{}')",
        blocker_args=(day,), work=lambda worker: worker.fetchval("SELECT settlement_compute($1)::text", day))
    assert await settlement_rows(pool, day) == ([], [], 0, "closed")  # nothing half-done

    done = await run_in_transaction(db.sessions, tasks.settle)
    assert day in done["computed"]
    resumed = await run_in_transaction(db.sessions, lambda s: service.get_settlement(s, day))
    assert (resumed.flows, resumed.positions) == (expected.flows, expected.positions)
    assert resumed.window.fee_income_fen == expected.window.fee_income_fen
