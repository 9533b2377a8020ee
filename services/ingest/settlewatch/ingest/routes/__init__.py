"""The ingest API's routes, one module per resource."""
