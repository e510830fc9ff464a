"""Resources hold their client and describe calls; the client runs them (retries, errors, parsing)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar

from alliance_sdk._models import Page

if TYPE_CHECKING:
    from alliance_sdk._client import Alliance, AsyncAlliance

T = TypeVar("T")


class Model(Protocol):
    """What `list_of` parses: a model of `alliance_sdk._models`."""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self: ...


M = TypeVar("M", bound=Model)


class SyncResource:
    def __init__(self, client: Alliance) -> None:
        self._client = client


class AsyncResource:
    def __init__(self, client: AsyncAlliance) -> None:
        self._client = client


def no_content(_: None) -> None:
    """The parse of an answer without a body (204)."""
    return None


def list_of(model: type[M]) -> Callable[[list[dict[str, Any]]], list[M]]:
    """The parse of an answer that is a list of `model`s."""

    def parse(data: list[dict[str, Any]]) -> list[M]:
        return [model.from_json(item) for item in data]

    return parse


def every_item(fetch_page: Callable[[str | None], Page[T]]) -> Iterator[T]:
    """The items of page after page, fetching each page (by the cursor of the one before) as iteration reaches it."""
    cursor = None
    while True:
        page = fetch_page(cursor)
        yield from page.data
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


async def every_item_async(fetch_page: Callable[[str | None], Awaitable[Page[T]]]) -> AsyncIterator[T]:
    """`every_item` for the async client: iterate it with `async for`."""
    cursor = None
    while True:
        page = await fetch_page(cursor)
        for item in page.data:
            yield item
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
