"""Alliance identities: one person's memberships of several brands, linked only with the person's consent. One
brand issues a link code to its member; the member gives it to another brand, which redeems it. Conversions reach
the receiving member through an identity: the member's own, or a friend's handle (public_id) for a gift."""
