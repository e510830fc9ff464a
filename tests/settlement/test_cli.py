"""The operator CLI of settlement: a day closed, computed (with its progress), stated into files the platform's key
verifies, and paid until settled; refusals printed as their codes; a failed check printed as its mismatches."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest

from tests.exchange_fixtures import jwks_of
from tests.settlement.helpers import one_conversion_day, shift_source_amount, verify_statement
from tests.tables import table_row, table_rows

pytestmark = pytest.mark.usefixtures("wide_terminal")  # the positions table is wide


@pytest.fixture
def settle(cli):
    """Runs `alliance settle …` in a thread: the CLI runs its own event loop, the test's is running already."""

    async def run(*args: str, exit_code: int = 0):
        result = await asyncio.to_thread(cli, "settle", *args)
        assert result.exit_code == exit_code, result.output
        return result

    return run


def _ids(output: str) -> list[int]:
    """The ids in the first column of the output's tables, in order."""
    return [int(row[0]) for row in table_rows(output) if row[0].isdigit()]


async def _day(settle) -> int:
    """Closes the open window (the cut-off prints it, then the one opened); returns its id."""
    closed, _ = _ids((await settle("close")).output)
    return closed


async def test_a_day_closed_computed_stated_and_paid_from_the_cli(settle, client, coffee_and_airline, convert,
                                                                  tmp_path):
    coffee, airline, _, _ = coffee_and_airline
    await _day(settle)  # the window other tests converted in: this test's day starts now
    for amount in (1000, 333):
        assert (await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": amount})).status_code == 201
    closed = (await settle("close")).output
    day, opened = _ids(closed)
    assert table_row(closed, str(day))[2] == "closed" and table_row(closed, str(day))[4] != ""
    assert (table_row(closed, str(opened))[2], table_row(closed, str(opened))[4]) == ("open", "")  # no cut-off yet

    everything = (await settle("compute")).output  # every closed window not computed yet, oldest first
    assert "computed" in everything.splitlines()[-1]  # the progress, finished
    computed = everything.split(f"window {day} (")[1]  # this day's tables: it is the newest
    assert table_row(computed, f"{coffee.code} -> {airline.code}") == [f"{coffee.code} -> {airline.code}", "2", "1,333",
                                                                  "2,638", "133.30", "1.40", "131.90"]
    # 1,333 beans at 0.10 = 133.30 gross; fees ceil(1%): 10 + 4 beans = 1.40; the airline receives 131.90.
    assert table_row(computed, coffee.code) == [coffee.code, "133.30", "1.40", "0.00", "0.00", "-133.30", "-13,330", "0",
                                           "-13,330", "unpaid"]
    assert table_row(computed, airline.code) == [airline.code, "0.00", "0.00", "131.90", "0.00", "131.90", "13,190", "0",
                                            "13,190", "unpaid"]
    assert "fee income: 1.40 (140 fen)" in computed
    for check in ("zero_sum", "bilateral", "journals", "cutoff_positions"):
        assert table_row(computed, check) == [check, "ok"]
    assert "no closed window awaits its computation" in (await settle("compute")).output

    recent = (await settle("status")).output
    assert table_row(recent, str(day))[2] == "pending_settlement" and table_row(recent, str(day))[5:] == ["2", "1.40"]
    assert table_row(recent, str(opened))[2:] == ["open", "", "", "", ""]
    one = (await settle("status", "--window", str(day))).output
    assert f"window {day} " in one and table_row(one, coffee.code)[6] == "-13,330" and table_row(one, "journals")[1] == "ok"

    jwks = await jwks_of(client)
    out = tmp_path / "statements"
    stated = (await settle("statements", "--window", str(day), "--out", str(out))).output
    assert "2 brands got a new one" in stated and table_row(stated, coffee.code)[1:3] == ["1", "-13,330"]
    for brand in (coffee, airline):
        for kind in ("csv", "pdf"):
            statement = out / f"statement-{day}-{brand.code}-v1.{kind}"
            verify_statement(statement.read_bytes(), (out / f"{statement.name}.jws").read_text(), jwks)
    rows = list(csv.reader(io.StringIO((out / f"statement-{day}-{coffee.code}-v1.csv").read_text())))
    assert [airline.code, "2", "1333", "133.3", "1.4", "0", "0", "0", "-133.3"] in rows

    paid = (await settle("mark-paid", "--window", str(day), "--tenant", coffee.code, "--bank-ref", "CNAPS-0001")).output
    assert f"window {day} " in paid and "pending_settlement; still to pay: " + airline.code in paid
    settled = await settle("mark-paid", "--window", str(day), "--tenant", airline.code, "--bank-ref", "CNAPS-0002")
    assert f"{airline.code} paid under CNAPS-0002; window {day} " in settled.output and "settled" in settled.output
    assert table_row((await settle("status", "--window", str(day))).output, coffee.code)[-1] == "CNAPS-0001"

    # Paying reissued each brand's statement; asked again, nothing new is issued and the latest is written.
    again = (await settle("statements", "--window", str(day), "--out", str(out))).output
    assert "0 brands got a new one" in again and table_row(again, airline.code)[1] == "2"
    reissued = out / f"statement-{day}-{coffee.code}-v2.csv"
    assert "CNAPS-0001" in reissued.read_text()
    verify_statement(reissued.read_bytes(), (out / f"{reissued.name}.jws").read_text(), jwks)
    assert "not written" in (await settle("statements", "--window", str(day))).output


async def test_refusals_are_printed_as_their_codes(settle, coffee_and_airline, convert, exchange_brand):
    coffee, airline, _, _ = coffee_and_airline
    await _day(settle)
    await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 1000})
    closed = (await settle("close")).output
    day, opened = _ids(closed)

    async def refused(*args: str) -> str:
        return (await settle(*args, exit_code=1)).output

    assert "window_open" in await refused("compute", "--window", str(opened))
    assert "window_not_found" in await refused("compute", "--window", str(2**62))
    assert "window_not_found" in await refused("status", "--window", str(2**62))
    assert "window_not_payable" in await refused("mark-paid", "--window", str(day), "--tenant", coffee.code,
                                                 "--bank-ref", "x")
    assert "window_not_computed" in await refused("statements", "--window", str(day))
    await settle("compute", "--window", str(day))
    outsider = await exchange_brand()
    assert "position_not_found" in await refused("mark-paid", "--window", str(day), "--tenant", outsider.code,
                                                 "--bank-ref", "x")
    assert "brand_not_found" in await refused("mark-paid", "--window", str(day), "--tenant", "no-such-brand",
                                              "--bank-ref", "x")
    assert "validation_error" in await refused("mark-paid", "--window", str(day), "--tenant", coffee.code,
                                                "--bank-ref", "银行")
    await settle("mark-paid", "--window", str(day), "--tenant", coffee.code, "--bank-ref", "CNAPS-1")
    assert "already_paid" in await refused("mark-paid", "--window", str(day), "--tenant", coffee.code,
                                           "--bank-ref", "CNAPS-2")
    assert "window_partly_paid" in await refused("abort", "--window", str(day), "--reason", "too late")


async def test_a_failed_check_prints_its_mismatches_and_keeps_its_report(settle, pool, coffee_and_airline, convert):
    coffee, airline, _, _ = coffee_and_airline
    day, converted = await one_conversion_day(lambda: _day(settle), convert, coffee_and_airline)
    # A conversion record that no longer agrees with its journal entries.
    await shift_source_amount(pool, converted["id"], +1)
    failed = (await settle("compute", exit_code=1)).output
    assert "settlement_checks_failed" in failed
    _, brands, details = table_row(failed.split("mismatches")[1], "journals")
    assert brands == f"{coffee.code} -> {airline.code}"
    assert details == 'flows [1001,1980,"100"], journals [1000,1980,"100"]'
    assert await pool.fetchval("SELECT count(*) FROM settlement_failures WHERE window_id = $1", day) == 1
    assert table_row((await settle("status")).output, str(day))[2] == "closed"
    # Fixed, it computes.
    await shift_source_amount(pool, converted["id"], -1)
    assert table_row((await settle("compute", "--window", str(day))).output, "journals") == ["journals", "ok"]


async def test_disputes_are_resolved_and_a_window_aborted_from_the_cli(settle, client, coffee_and_airline, convert):
    coffee, airline, _, _ = coffee_and_airline
    day, _ = await one_conversion_day(lambda: _day(settle), convert, coffee_and_airline)
    await settle("compute", "--window", str(day))
    disputed = await client.post("/v1/settlement/disputes", headers=airline.headers, json={
        "window_id": day, "counterparty": coffee.code, "reason": "One conversion was never honoured"})
    assert disputed.status_code == 201, disputed.text
    dispute = str(disputed.json()["id"])
    listed = (await settle("disputes", "--status", "open")).output
    assert table_row(listed, dispute)[1:5] == [airline.code, str(day), coffee.code, "open"]

    assert "validation_error" in (await settle("resolve", "--dispute", dispute, "--accept", "--resolution", "yes",
                                               exit_code=1)).output  # accepted without an adjustment
    accepted = (await settle("resolve", "--dispute", dispute, "--accept", "--adjustment-fen", "500",
                             "--resolution", "coffee refunds 5.00")).output
    assert f"accepted: {airline.code} receives 5.00 from {coffee.code}" in accepted
    assert "dispute_resolved" in (await settle("resolve", "--dispute", dispute, "--reject", "--resolution", "again",
                                               exit_code=1)).output
    assert int(dispute) not in _ids((await settle("disputes", "--status", "open")).output)

    aborted = (await settle("abort", "--window", str(day), "--reason", "bank holiday")).output
    assert f"window {day} " in aborted and "aborted" in aborted
    assert "window_not_abortable" in (await settle("abort", "--window", str(day), "--reason", "again",
                                                   exit_code=1)).output
    # The next day carries the aborted one's flows and the dispute's adjustment.
    carried = (await settle("compute", "--window", str(await _day(settle)))).output
    # 99.00 carried over (1,000 beans less 1% fee, at 0.10), 5.00 adjusted.
    assert table_row(carried, airline.code)[3:7] == ["0.00", "104.00", "104.00", "10,400"]
