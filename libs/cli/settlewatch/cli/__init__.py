"""The ``settlewatch`` command: the production commands (serve, migrate, dead-letters), and
those that other installed parts add (``up`` from the dev stack, ``demo``)."""
