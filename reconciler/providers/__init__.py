"""Targets: the registry of providers, chosen by a target string (``--target``, ``RECONCILER_TARGET``)."""
