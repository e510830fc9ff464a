from alliance_sdk.resources.admin import Admin, AsyncAdmin, AsyncKeys, AsyncTenants, Keys, Tenants
from alliance_sdk.resources.bulk import AsyncBulk, Bulk
from alliance_sdk.resources.entries import AsyncEntries, Entries
from alliance_sdk.resources.holds import AsyncHolds, Holds
from alliance_sdk.resources.members import AsyncMembers, Members
from alliance_sdk.resources.signing_keys import AsyncSigningKeys, SigningKeys
from alliance_sdk.resources.webhooks import (
    AsyncWebhookDeliveries,
    AsyncWebhookEndpoints,
    WebhookDeliveries,
    WebhookEndpoints,
)

__all__ = [
    "Admin", "AsyncAdmin", "AsyncBulk", "AsyncEntries", "AsyncHolds", "AsyncKeys", "AsyncMembers", "AsyncTenants",
    "AsyncSigningKeys", "AsyncWebhookDeliveries", "AsyncWebhookEndpoints", "Bulk", "Entries", "Holds", "Keys",
    "Members", "SigningKeys", "Tenants", "WebhookDeliveries", "WebhookEndpoints",
]
