"""The settlement domain (built by a later issue)."""
