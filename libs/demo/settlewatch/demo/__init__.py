"""``settlewatch demo``: a bank-outage scenario played against the stack. Installed with the
``demo`` extra."""
