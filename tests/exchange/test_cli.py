"""The operator CLI of the exchange: participants, pairs and rate cards as tables, refusals as their codes."""

import os
from datetime import date

import pytest

from tests.tables import table_row

pytestmark = pytest.mark.usefixtures("wide_terminal")  # the exchange's tables are wide


def _brand(cli, point_value: str) -> str:
    code = f"cli-{os.urandom(3).hex()}"
    created = cli("tenants", "create", "--code", code, "--name", code, "--currency", "PTS", "--point-value", point_value)
    assert created.exit_code == 0, created.output
    return code


def test_operator_admits_brands_pairs_them_and_publishes_rate_cards(cli):
    coffee, airline = _brand(cli, "0.10"), _brand(cli, "0.05")
    admitted = cli("exchange", "participants", "admit", "--brand", coffee, "--cap", "50000.00")
    assert admitted.exit_code == 0, admitted.output
    assert f"brand {coffee} admitted" in admitted.output and "cap 50,000.00, alarm at 80%" in admitted.output
    assert cli("exchange", "participants", "admit", "--brand", airline, "--cap", "1000.5",
               "--alarm-percent", "90").exit_code == 0

    listed = cli("exchange", "participants", "list").output
    row = table_row(listed, coffee)
    assert row[1:-1] == ["active", "50,000.00", "0.00", "50,000.00", "0.0%", "0.00", "0.00", "0.00", "0.00",
                          "80%"]
    date.fromisoformat(row[-1])  # the open window's business date
    assert table_row(listed, airline)[2] == "1,000.50" and table_row(listed, airline)[-2] == "90%"

    updated = cli("exchange", "participants", "update", "--brand", airline, "--cap", "2000", "--status", "suspended")
    assert updated.exit_code == 0 and "suspended, net debit cap 2,000.00, alarm at 90%" in updated.output
    assert cli("exchange", "participants", "update", "--brand", airline, "--status", "active").exit_code == 0

    opened = cli("exchange", "pairs", "open", "--source", coffee, "--target", airline)
    assert opened.exit_code == 0 and f"pair {coffee} -> {airline} open" in opened.output
    assert table_row(cli("exchange", "pairs", "list").output, coffee, airline)[:3] == [coffee, airline, "open"]

    published = cli("exchange", "rate-cards", "create", "--source", coffee, "--target", airline, "--fee-bps", "100",
                    "--min", "10", "--max", "100000", "--member-daily-limit", "5000")
    assert published.exit_code == 0, published.output
    assert f"rate card v1 of {coffee} -> {airline}, in_force" in published.output
    announced = cli("exchange", "rate-cards", "create", "--source", coffee, "--target", airline, "--rate", "2",
                    "--effective-at", "2099-01-01T00:00:00+08:00", "--quote-ttl", "60")
    assert announced.exit_code == 0 and "v2" in announced.output
    assert "scheduled from 2098-12-31 16:00:00 UTC" in announced.output

    cards = cli("exchange", "rate-cards", "list", "--source", coffee).output
    pair = f"{coffee} -> {airline}"
    in_force, scheduled = table_row(cards, pair, "in_force"), table_row(cards, pair, "scheduled")
    assert in_force[:2] == [f"{coffee} -> {airline}", "1"]
    assert in_force[3:] == ["derived", "100", "10", "100,000", "5,000", "none", "30", "in_force"]
    assert scheduled[1:] == ["2", "2098-12-31 16:00:00", "2", "0", "1", "1,000,000,000", "none", "none", "60",
                             "scheduled"]
    assert coffee not in cli("exchange", "rate-cards", "list", "--target", coffee).output

    closed = cli("exchange", "pairs", "close", "--source", coffee, "--target", airline)
    assert closed.exit_code == 0 and f"pair {coffee} -> {airline} closed" in closed.output
    assert table_row(cli("exchange", "pairs", "list").output, coffee, airline)[:3] == [coffee, airline, "closed"]


def test_refusals_are_printed_as_their_codes(cli):
    coffee, airline = _brand(cli, "0.10"), _brand(cli, "0.05")
    assert cli("exchange", "participants", "admit", "--brand", coffee, "--cap", "100").exit_code == 0

    def refused(*args: str) -> str:
        result = cli("exchange", *args)
        assert result.exit_code == 1, result.output
        return result.output

    assert "participant_exists" in refused("participants", "admit", "--brand", coffee, "--cap", "100")
    for cap in ("-1", "12.345", "lots"):
        assert "validation_error" in refused("participants", "admit", "--brand", airline, "--cap", cap)
    assert "participant_not_found" in refused("participants", "update", "--brand", airline, "--cap", "5")
    assert "tenant_not_found" in refused("participants", "admit", "--brand", "no-such-brand", "--cap", "1")
    # An open pair needs both brands in the exchange; a rate card needs the pair.
    assert "participant_not_found" in refused("pairs", "open", "--source", coffee, "--target", airline)
    assert "validation_error" in refused("pairs", "open", "--source", coffee, "--target", coffee)
    assert "pair_not_found" in refused("rate-cards", "create", "--source", coffee, "--target", airline)
    assert "pair_not_found" in refused("pairs", "close", "--source", coffee, "--target", airline)

    assert cli("exchange", "participants", "admit", "--brand", airline, "--cap", "100").exit_code == 0
    assert cli("exchange", "pairs", "open", "--source", coffee, "--target", airline).exit_code == 0
    assert "rate_exceeds_point_values" in refused("rate-cards", "create", "--source", coffee, "--target", airline,
                                                  "--rate", "2.5")
    assert "validation_error" in refused("rate-cards", "create", "--source", coffee, "--target", airline,
                                         "--effective-at", "2099-01-01T00:00:00")  # no offset
    assert "validation_error" in refused("rate-cards", "create", "--source", coffee, "--target", airline,
                                         "--min", "100", "--max", "10")

    nothing = cli("exchange", "participants", "update", "--brand", coffee)
    assert nothing.exit_code == 2 and "Nothing to change" in nothing.output
