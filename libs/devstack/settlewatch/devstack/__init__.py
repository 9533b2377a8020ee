"""The developer stack behind ``settlewatch up``: embedded PostgreSQL and broker, and a supervisor
that runs the three services as OS processes. Installed with the ``devstack`` extra."""
