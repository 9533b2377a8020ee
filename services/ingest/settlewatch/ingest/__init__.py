"""The ingest service: the acquirer backend's HTTP entry point into settlewatch."""
