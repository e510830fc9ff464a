"""The brand's bulk endpoint (/v1/bulk): many credits and debits in one request."""

from __future__ import annotations

from litestar import Controller, Request, post
from litestar.params import JSONBody

from alliance.auth.guards import brand_only, caller_transaction
from tenants.bulk import service
from tenants.bulk.schemas import MAX_ITEMS, BulkCreate, BulkRead


class BulkController(Controller):
    path = "/v1/bulk"
    tags = ["bulk"]
    guards = [brand_only]

    @post(
        "/operations", status_code=200,
        summary=f"Apply up to {MAX_ITEMS} credits and debits, each with its own idempotency key and outcome",
        description="Items run in order, each on its own: a rejected item (unknown or frozen member, "
        "insufficient points, a reused key) leaves the others applied. A retried batch replays item by item. "
        "No Idempotency-Key header: each item carries its key.",
    )
    async def apply(self, request: Request, data: JSONBody[BulkCreate]) -> BulkRead:
        results = await caller_transaction(request, lambda session: service.apply_operations(session, data.items),
        )
        return BulkRead(results=results)
