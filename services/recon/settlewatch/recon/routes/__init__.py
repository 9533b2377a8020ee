"""The recon API's routes, one module per resource."""
