"""Bulk operations: many credits and debits in one request, for a brand's nightly point-of-sale imports."""
