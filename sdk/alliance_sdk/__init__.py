"""Alliance SDK: the brand-side client of the Alliance points exchange (filled in by issue 3)."""

__version__ = "0.1.0"
