"""The imperative shell around the core: locking, journaling, planning against a target, applying."""
