"""The alerts service: turns findings into alerts, merchant webhooks and on-call pages."""
