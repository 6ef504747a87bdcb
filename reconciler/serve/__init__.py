"""``reconciler serve``: the reconcile loop as a service, with a read-only dashboard, metrics and a webhook.

- ``loop``: the reconcile loop as the service runs it (pass timing, apply outcomes, a snapshot of every
  configuration after each pass, nudges from webhooks that reached another replica).
- ``snapshot``: what the active loop stores after each pass for every replica's pages and metrics.
- ``view``: the one place that reads the shared state for pages and metrics.
- ``app``: the HTTP application (pages, ``/metrics``, ``/healthz``, ``/readyz``, ``/hooks/git``).
- ``metrics``: the Prometheus metrics; ``webhook``: push-hook signatures and payloads.
- ``service``: the process: the loop in a thread, the HTTP server, signals.

Importing this package imports nothing heavy; its modules import Starlette, uvicorn, Jinja2 and
prometheus_client, so only ``reconciler serve`` pays for them.
"""
