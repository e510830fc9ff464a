"""Settlement: each business day's window of conversions is closed, netted into what each brand pays or
receives, proven (zero sum, bilateral = multilateral, journals = totals), paid, and stated to every brand."""
