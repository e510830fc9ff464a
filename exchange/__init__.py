"""The exchange domain (built by a later issue)."""
