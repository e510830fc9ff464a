from alliance_sdk.resources.admin import Admin, AsyncAdmin, AsyncKeys, AsyncTenants, Keys, Tenants
from alliance_sdk.resources.admin_exchange import (
    AdminExchange,
    AsyncAdminExchange,
    AsyncPairs,
    AsyncParticipants,
    AsyncRateCards,
    Pairs,
    Participants,
    RateCards,
)
from alliance_sdk.resources.admin_settlement import AdminSettlement, AsyncAdminSettlement
from alliance_sdk.resources.brand import AsyncBrand, Brand
from alliance_sdk.resources.bulk import AsyncBulk, Bulk
from alliance_sdk.resources.conversions import AsyncConversions, Conversions
from alliance_sdk.resources.entries import AsyncEntries, Entries
from alliance_sdk.resources.exchange import AsyncExchange, Exchange
from alliance_sdk.resources.holds import AsyncHolds, Holds
from alliance_sdk.resources.links import AsyncLinks, Links
from alliance_sdk.resources.members import AsyncMembers, Members
from alliance_sdk.resources.settlement import AsyncBrandSettlement, BrandSettlement
from alliance_sdk.resources.signing_keys import AsyncSigningKeys, SigningKeys
from alliance_sdk.resources.webhooks import (
    AsyncWebhookDeliveries,
    AsyncWebhookEndpoints,
    WebhookDeliveries,
    WebhookEndpoints,
)

__all__ = [
    "Admin", "AdminExchange", "AdminSettlement", "AsyncAdmin", "AsyncAdminExchange", "AsyncAdminSettlement",
    "AsyncBrand", "AsyncBrandSettlement", "AsyncBulk", "AsyncConversions", "AsyncEntries", "AsyncExchange",
    "AsyncHolds", "AsyncKeys", "AsyncLinks", "AsyncMembers", "AsyncPairs", "AsyncParticipants", "AsyncRateCards",
    "AsyncSigningKeys", "AsyncTenants", "AsyncWebhookDeliveries", "AsyncWebhookEndpoints", "Brand", "BrandSettlement",
    "Bulk", "Conversions", "Entries", "Exchange", "Holds", "Keys", "Links", "Members", "Pairs", "Participants",
    "RateCards", "SigningKeys", "Tenants", "WebhookDeliveries", "WebhookEndpoints",
]
