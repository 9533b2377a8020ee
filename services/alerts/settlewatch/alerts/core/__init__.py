"""The alerts service's pure core: alert identity and lifecycle, grouping, summaries, the
webhook retry policy and signature, bank-incident judgement.

No I/O and no wall clock: time is an argument, so every rule is unit-testable with explicit
timestamps and the adapters (store, consumer, delivery, on-call) stay thin.
"""
