"""The recon service (SPEC §9): settlement files, payouts and the desk."""
