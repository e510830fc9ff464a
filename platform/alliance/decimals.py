"""Exact decimals at the API's edge: money and rates come in as strings (or JSON numbers, read exactly), are
checked for range and precision, and go out without trailing zeros; never a float."""

from __future__ import annotations

from decimal import Decimal


def checked(value: Decimal, name: str, *, low: Decimal, high: Decimal, places: int, positive: bool = False) -> Decimal:
    """`value`, or ValueError naming `name` (msgspec reports it as a validation error of the field)."""
    if not value.is_finite() or not low <= value <= high or (positive and value <= 0):
        bound = "greater than 0" if positive else f"at least {low}"
        raise ValueError(f"{name} must be {bound} and at most {high}")
    if -value.as_tuple().exponent > places:
        raise ValueError(f"{name} may have at most {places} decimal places")
    return value


def plain(value: Decimal) -> Decimal:
    """The same number without trailing zeros or an exponent: 12.300000000000 -> 12.3, 1E+1 -> 10."""
    normalized = value.normalize()
    return normalized if normalized.as_tuple().exponent <= 0 else normalized.quantize(Decimal(1))
