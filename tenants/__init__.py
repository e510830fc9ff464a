"""The tenants domain (built by a later issue)."""
