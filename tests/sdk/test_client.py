"""The blocking client end to end against the real app: onboarding, every value operation, reads, errors."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import alliance_sdk as sdk
import pytest
from alliance_sdk import Alliance


def test_the_operator_onboards_a_brand(operator: Alliance, base_url: str):
    code = f"tea-{uuid.uuid4().hex[:8]}"
    tenant = operator.admin.tenants.create(code=code, name="Tea House", currency_code="LEAVES", point_value="0.05",
                                           expiry_days=365)
    assert (tenant.code, tenant.currency_code, tenant.expiry_days) == (code, "LEAVES", 365)
    assert operator.admin.tenants.retrieve(tenant.id) == tenant
    assert tenant in operator.admin.tenants.list()

    key = operator.admin.keys.create(tenant.id, name="backend")
    assert key.secret.startswith("alk_") and key.revoked_at is None
    assert [(k.key_id, k.secret) for k in operator.admin.keys.list(tenant.id)] == [(key.key_id, None)]

    with Alliance(api_key=key.secret, base_url=base_url) as brand:
        assert brand.members.upsert("alice").external_id == "alice"
        with pytest.raises(sdk.PermissionDeniedError):
            brand.admin.tenants.list()
        assert operator.admin.keys.revoke(tenant.id, key.key_id).revoked_at is not None
        with pytest.raises(sdk.AuthenticationError) as refused:
            brand.members.retrieve("alice")
    assert refused.value.status_code == 401 and refused.value.code == "unauthorized"

    with pytest.raises(sdk.TenantCodeTakenError):
        operator.admin.tenants.create(code=code, name="Again", currency_code="LEAVES", point_value="0.05")
    with pytest.raises(sdk.TenantNotFoundError):
        operator.admin.tenants.retrieve(10**12)


def test_members_are_upserted_read_and_updated(brand: Alliance):
    created = brand.members.upsert("grace@example", nickname="G", phone="+86 138 0000 1234")
    assert (created.external_id, created.status, created.phone) == ("grace@example", "active", "+86 138 0000 1234")
    again = brand.members.upsert("grace@example", birthday=datetime(1990, 5, 17).date())
    assert (again.nickname, again.birthday.isoformat()) == ("G", "1990-05-17")
    assert brand.members.retrieve("grace@example") == again

    cleared = brand.members.update("grace@example", nickname=None, address="1 Bund Road")
    assert (cleared.nickname, cleared.phone, cleared.address) == (None, "+86 138 0000 1234", "1 Bund Road")


def test_points_move_through_every_operation(brand: Alliance):
    for member in ("alice", "bob"):
        brand.members.upsert(member)

    credit = brand.members.credit("alice", 500, reason="purchase", metadata={"order": "A-1"})
    assert credit.balances == {"alice": 500}
    assert [p.account for p in credit.entry.postings] == ["system:issuance", "member:alice"]
    assert credit.entry.metadata == {"order": "A-1", "reason": "purchase"}

    debit = brand.members.debit("alice", 100, reason="coffee")
    assert debit.balances == {"alice": 400}
    assert brand.members.gift("alice", 150, to="bob").balances == {"alice": 250, "bob": 150}

    hold = brand.members.hold("alice", 200, reason="order")
    assert (hold.status, hold.member, hold.amount) == ("pending", "alice", 200)
    balance = brand.members.balance("alice")
    assert (balance.balance, balance.held, balance.available) == (250, 200, 50)
    assert brand.holds.capture(hold.id, amount=120).balances == {"alice": 130}
    with pytest.raises(sdk.HoldNotPendingError):
        brand.holds.capture(hold.id)

    second = brand.members.hold("alice", 30, reason="order")
    released = brand.holds.release(second.id)
    assert released.status == "voided" and brand.members.balance("alice").available == 130

    reversal = brand.entries.reverse(debit.entry.id, reason="refund")
    assert reversal.balances == {"alice": 230} and reversal.entry.reverses_entry_id == debit.entry.id
    with pytest.raises(sdk.AlreadyReversedError):
        brand.entries.reverse(debit.entry.id, reason="refund")
    assert brand.entries.retrieve(debit.entry.id).kind == "debit"


def test_balances_show_expiring_points_and_the_past(brand: Alliance):
    brand.members.upsert("erin")
    brand.members.credit("erin", 40, reason="purchase", expires_at=datetime.now(UTC) + timedelta(days=3))
    brand.members.credit("erin", 60, reason="purchase")
    soon = brand.members.balance("erin", expiring_within_days=7)
    assert soon.balance == 100 and [e.amount for e in soon.expiring] == [40]
    first_posted_at = list(brand.members.history("erin"))[-1].posted_at
    past = brand.members.balance("erin", at=first_posted_at)
    assert (past.balance, past.as_of is not None) == (40, True)


def test_history_follows_cursors_across_pages(brand: Alliance):
    brand.members.upsert("henry")
    for amount in range(1, 8):
        brand.members.credit("henry", amount, reason="task")
    brand.members.debit("henry", 3, reason="coffee")

    items = list(brand.members.history("henry", limit=3))
    assert [i.amount for i in items] == [-3, 7, 6, 5, 4, 3, 2, 1]
    assert items[0].balance_after == 25 and items[0].kind == "debit"
    assert [i.amount for i in brand.members.history("henry", kind="debit", limit=2)] == [-3]

    page = brand.members.history_page("henry", limit=5)
    assert len(page.data) == 5 and page.next_cursor is not None
    rest = brand.members.history_page("henry", cursor=page.next_cursor, limit=5)
    assert len(rest.data) == 3 and rest.next_cursor is None


def test_refusals_raise_the_error_of_their_code(brand: Alliance):
    brand.members.upsert("frank")
    brand.members.credit("frank", 10, reason="signup")

    with pytest.raises(sdk.InsufficientPointsError) as short:
        brand.members.debit("frank", 11, reason="coffee")
    assert isinstance(short.value, sdk.UnprocessableEntityError)
    assert (short.value.status_code, short.value.available, short.value.requested) == (422, 10, 11)

    assert brand.members.update("frank", status="frozen").status == "frozen"
    with pytest.raises(sdk.MemberFrozenError) as frozen:
        brand.members.credit("frank", 1, reason="signup")
    assert isinstance(frozen.value, sdk.ConflictError) and frozen.value.problem["member"] == "frank"

    with pytest.raises(sdk.MemberNotFoundError) as missing:
        brand.members.retrieve("nobody")
    assert isinstance(missing.value, sdk.NotFoundError) and missing.value.request_id

    with pytest.raises(sdk.ValidationError) as invalid:
        brand.members.upsert("not valid", phone="call me")
    assert invalid.value.status_code == 422 and invalid.value.errors

    with pytest.raises(sdk.ValidationError):
        brand.members.credit("frank", 0, reason="signup")
    with pytest.raises(ValueError, match="naive"):
        brand.members.credit("frank", 1, reason="signup", expires_at=datetime(2100, 1, 1))


def test_hold_expiry_is_its_own_error(brand: Alliance):
    brand.members.upsert("ivan")
    brand.members.credit("ivan", 10, reason="signup")
    hold = brand.members.hold("ivan", 5, reason="order", expires_in_seconds=1)
    time.sleep(1.1)
    with pytest.raises(sdk.HoldExpiredError):
        brand.holds.capture(hold.id)


def test_an_explicit_idempotency_key_applies_the_call_once(brand: Alliance):
    brand.members.upsert("dave")
    key = str(uuid.uuid4())
    first = brand.members.credit("dave", 70, reason="purchase", idempotency_key=key)
    again = brand.members.credit("dave", 70, reason="purchase", idempotency_key=key)
    assert again.entry == first.entry
    assert brand.members.balance("dave").balance == 70
    with pytest.raises(sdk.IdempotencyKeyReusedError):
        brand.members.credit("dave", 71, reason="purchase", idempotency_key=key)
