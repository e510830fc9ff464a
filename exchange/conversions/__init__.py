"""Conversions: a member's points of one brand turned into points of another, as a two-phase transfer over both
brands' ledgers (reserve -> commit | abort | expire, or convert at once), signed by the source brand and
countersigned by the platform."""
