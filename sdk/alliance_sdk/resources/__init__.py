from alliance_sdk.resources.admin import Admin, AsyncAdmin, AsyncKeys, AsyncTenants, Keys, Tenants
from alliance_sdk.resources.entries import AsyncEntries, Entries
from alliance_sdk.resources.holds import AsyncHolds, Holds
from alliance_sdk.resources.members import AsyncMembers, Members

__all__ = [
    "Admin", "AsyncAdmin", "AsyncEntries", "AsyncHolds", "AsyncKeys", "AsyncMembers", "AsyncTenants", "Entries",
    "Holds", "Keys", "Members", "Tenants",
]
