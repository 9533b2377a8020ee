"""The matcher service: watches every payment until it is settled and emits findings."""
