"""Resources hold their client and describe calls; the client runs them (retries, errors, parsing)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alliance_sdk._client import Alliance, AsyncAlliance


class SyncResource:
    def __init__(self, client: Alliance) -> None:
        self._client = client


class AsyncResource:
    def __init__(self, client: AsyncAlliance) -> None:
        self._client = client
