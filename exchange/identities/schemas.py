"""Link codes and alliance links."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from msgspec import Meta, Struct

from tenants.schemas import ExternalId

# Twelve characters of an alphabet without look-alikes, grouped by four; case and dashes do not matter.
LinkCodeText = Annotated[str, Meta(min_length=12, max_length=20, pattern=r"^[A-Za-z0-9-]+$",
                                   description="a link code as issued, e.g. 7KQF-M2XD-9PWR")]


class LinkCodeRead(Struct):
    """Give the code to the member, who gives it to the other brand; it works once, until expires_at."""

    code: str
    member: str
    expires_at: datetime


class LinkRedeem(Struct, forbid_unknown_fields=True):
    code: LinkCodeText
    member: ExternalId  # the member of the redeeming brand who presents the code


class LinkRead(Struct):
    member: str
    # The person's handle in the alliance: a friend names it to receive a gift.
    identity: str
    # The brands whose memberships this identity links (this one included).
    brands: list[str]
    linked_at: datetime
