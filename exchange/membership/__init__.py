"""Who is in the exchange: brands admitted with their net debit caps, the pairs that may convert, the settlement
windows and each brand's running position in the open one. The operator's side."""
