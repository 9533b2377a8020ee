"""The alerts service's persistence (PostgreSQL), one repository per concern:

- ``alerts.Alerts``: alerts — absorbing findings, people's acks and resolves, on-call pushes,
  incidents, retention, counts;
- ``deliveries.Deliveries``: webhook deliveries, their attempts and disabled endpoints;
- ``reads.Reads``: what the service reads of others' data — the matcher through its read views
  (``matcher_read_clock``, ``matcher_read_due``), maintenance windows from the reference data.

Rows leave as dataclasses (``rows.py``); the JSON the API and the webhooks show is shaped in
``alerts/views.py``. Every write is one transaction and set-based. Absorbing findings is
idempotent (alert id = finding id, forward-only statuses), so the consumer commits its Kafka
offsets after the transaction and a redelivered batch changes nothing. An alert joins a delivery
by an update guarded with ``delivery_id IS NULL``, in the transaction that creates the delivery
and fixes its body: an alert is in one delivery only, whatever crashes or concurrent instances
do. Deliveries are claimed with a lease (``next_attempt_at`` pushed past the attempt timeout,
``FOR UPDATE SKIP LOCKED``), so an attempt cut short by a crash is made again, with the same
``webhook-id``, after the lease; never by two instances at once.
"""
