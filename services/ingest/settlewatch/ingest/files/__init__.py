"""Settlement files at the HTTP edge (SPEC §9): received, parsed and stored all-or-nothing."""
