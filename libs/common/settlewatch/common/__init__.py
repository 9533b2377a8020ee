"""Shared plumbing of the settlewatch services: config, logging, database, Kafka, HTTP."""
