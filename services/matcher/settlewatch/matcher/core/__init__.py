"""The matcher's pure core: events and a clock in, state changes and findings out.

No I/O, no wall clock, no logging: every function here is deterministic, so the core can be
unit- and property-tested and a replay from the earliest offset reproduces the live run.
"""
