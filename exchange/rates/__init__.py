"""Prices: versioned rate cards per pair (the operator's), the price list brands read, and quotes that lock a price
for a short time."""
