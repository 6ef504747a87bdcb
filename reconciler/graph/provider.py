"""The Graph provider: Cloud Sync configurations in a Microsoft Entra tenant, through Microsoft Graph.

Targets: ``graph`` (``https://graph.microsoft.com/v1.0``), ``graph:https://HOST/v1.0`` (another Graph
cloud) and ``graph+http://HOST:PORT[/beta]`` (the emulator, or a proxy; ``/v1.0`` unless ``/beta`` is
named). The cloud-sync how-to uses ``/beta``, but the v1.0 metadata holds every type, property and
action used here (``containerFilter``/``groupFilter`` included), so ``graph`` stays on v1.0.

A configuration is what the portal makes: a service principal instantiated from the AD2AAD template,
its ``AD2AADProvisioning`` job (and ``AD2AADPasswordHash`` with password hash sync), the secrets
``Domain``/``AppKey``/``SyncNotificationSettings``, scope and mappings in the provisioning job's schema.
Enabled means the jobs are started, disabled paused. Ours carry our tags on the service principal.

Secrets and schema are full replacements on the service, so every write reads first, changes only what
we manage (``reading``, ``editing``, ``secrets``) and writes back everything else as it was read.

The target is made of ``listing`` (which principals may hold a configuration), ``reader`` (reading
them), ``resources`` (the requests the shared write steps of ``writes`` are made of) and this module's
provisioning on demand and expression checks.

I/O: HTTP requests to the target through ``GraphClient`` (``reconciler.graph.client``), nothing else.
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from reconciler.core.model import MAX_ON_DEMAND_MEMBERS, Mapping
from reconciler.errors import ConfigError, ProviderError
from reconciler.graph.client import GraphClient, RetryPolicy
from reconciler.graph.identity import PROVISIONING_TEMPLATE, on_demand_subject
from reconciler.graph.paths import job_path, sp_path
from reconciler.graph.reader import GraphReading
from reconciler.graph.reading import find_provisioning_rule
from reconciler.graph.resources import GraphResources
from reconciler.graph.tokens import TokenProvider, token_provider_for
from reconciler.graph.writes import CloudSyncWriter

__all__ = [
    "CONCURRENCY_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_CONCURRENCY",
    "TIMEOUT_ENV",
    "GraphProvider",
    "open_graph",
    "parse_target",
]

DEFAULT_BASE_URL = "https://graph.microsoft.com/v1.0"
CONCURRENCY_ENV = "RECONCILER_GRAPH_CONCURRENCY"
TIMEOUT_ENV = "RECONCILER_GRAPH_TIMEOUT"
DEFAULT_CONCURRENCY = 10


def parse_target(target: str) -> tuple[str, str]:
    """``(base_url, canonical target)`` for a ``graph`` target string."""
    text = target.strip()
    if text in ("graph", "graph:"):
        return DEFAULT_BASE_URL, "graph:" + DEFAULT_BASE_URL
    if text.startswith("graph:"):
        base = text[len("graph:") :].rstrip("/")
        parts = urllib.parse.urlsplit(base)
        if parts.scheme != "https" or not parts.hostname:
            raise ConfigError(f"target {target!r}: expected graph:https://HOST/VERSION")
        return base, "graph:" + base
    if text.startswith(("graph+http://", "graph+https://")):
        url = text[len("graph+") :].rstrip("/")
        parts = urllib.parse.urlsplit(url)
        # The version may be named (/v1.0 or /beta, both served by the emulator); v1.0 otherwise.
        version = parts.path.strip("/").lower() or "v1.0"
        if not parts.hostname or version not in ("v1.0", "beta") or parts.query or parts.fragment:
            raise ConfigError(f"target {target!r}: expected graph+http://HOST:PORT[/v1.0|/beta]")
        try:
            parts.port  # noqa: B018 - validates the port
        except ValueError as exc:
            raise ConfigError(f"target {target!r}: the port is not a number") from exc
        origin = f"{parts.scheme}://{parts.netloc}"
        if version == "beta":
            return origin + "/beta", "graph+" + origin + "/beta"
        return origin + "/v1.0", "graph+" + origin
    raise ConfigError(f"target {target!r} is not a Graph target (graph, graph+http://HOST:PORT)")


def open_graph(target: str) -> GraphProvider:
    """The provider for ``target``; concurrency and timeout from the environment."""
    base_url, canonical = parse_target(target)
    concurrency = _env_number(CONCURRENCY_ENV, DEFAULT_CONCURRENCY, int, MAX_CONCURRENCY)
    timeout = _env_number(TIMEOUT_ENV, 60.0, float, MAX_TIMEOUT)
    return GraphProvider(base_url, target=canonical, concurrency=concurrency, timeout=timeout)


# Bounds on the settings read from the environment: beyond them a typo would exhaust the machine
# (a pool of a billion connections) or hang a run.
MAX_CONCURRENCY = 256
MAX_TIMEOUT = 3600.0


def _env_number(name: str, default: Any, kind: type, maximum: float) -> Any:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw[:40]!r} is not a number") from None
    if not (0 < value <= maximum):  # also refuses nan
        raise ConfigError(f"{name} must be greater than 0 and at most {maximum:g}")
    return value


class GraphProvider(CloudSyncWriter, GraphReading):
    """``Provider`` over Microsoft Graph (or the emulator)."""

    def __init__(
        self,
        base_url: str,
        *,
        target: str | None = None,
        tokens: TokenProvider | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        client: GraphClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.target = target or "graph:" + self.base_url
        self.client = client or GraphClient(
            self.base_url,
            tokens or token_provider_for(self.base_url),
            concurrency=concurrency,
            timeout=timeout,
            retry=retry,
        )
        self._lock = threading.Lock()
        self._template: tuple[Mapping, ...] | None = None
        self._template_future: Future[tuple[Mapping, ...] | None] | None = None
        self._template_source: str | None = None  # an SP id to read the template through
        self._select_schema = True  # until the service refuses $select on a schema
        # Provisioning job ids by principal, as last seen: they let a write fetch the schema early.
        self._known_jobs: dict[str, str] = {}
        # Domains whose portal-made configurations are looked up by display name (look_up_domains).
        self._domains: frozenset[str] | None = frozenset()
        self._tenant: str | None = None
        self.resources = GraphResources(self)

    def close(self) -> None:
        self.client.close()

    def provision_on_demand(
        self, id: str, subject: str, object_type: str = "user", *, members: Sequence[str] = ()
    ) -> dict[str, Any]:
        """``provisionOnDemand`` on the configuration's job, with the rule id read from its schema; an
        Entra ID -> AD group takes up to ``MAX_ON_DEMAND_MEMBERS`` of its ``members`` along."""
        if len(members) > MAX_ON_DEMAND_MEMBERS:
            raise ProviderError(
                f"{len(members)} members: provisioning on demand takes at most {MAX_ON_DEMAND_MEMBERS} "
                "a request"
            )
        job = self._provisioning_job(id, self.resources.load(id, schema=False).jobs)
        rule = find_provisioning_rule(self._schema(id, job["id"]))
        if rule is None or not rule.get("id"):
            raise ProviderError(f"configuration {id}: the job schema has no provisioning rule")
        one = on_demand_subject(str(job.get("templateId")), subject, object_type, members)
        body = {"parameters": [{"ruleId": rule["id"], "subjects": [one]}]}
        # Not repeated after an unknown outcome: provisioning one object twice is not harmless.
        result = self.client.request("POST", job_path(id, job["id"]) + "/provisionOnDemand", body=body)
        if not isinstance(result, dict):
            raise ProviderError(f"configuration {id}: provisionOnDemand returned no result")
        return {k: v for k, v in result.items() if not k.startswith("@odata.")}

    def parse_expression(self, expression: str, configuration_id: str | None = None) -> dict[str, Any]:
        """The service's ``parseExpression`` for ``expression`` (parsing only, no test input).

        It runs on the template schema of ``configuration_id``, or of any configuration on the target.
        """
        sp_id = configuration_id or self._template_source
        if sp_id is None:
            sp_id = next((sp["id"] for page in self._list_sps() for sp in page[:1]), None)
        if sp_id is None:
            raise ProviderError(
                "checking expressions on the service needs one Cloud Sync configuration on the target"
            )
        path = f"{sp_path(sp_id)}/synchronization/templates/{PROVISIONING_TEMPLATE}/schema/parseExpression"
        body = {"expression": expression, "targetAttributeDefinition": None, "testInputObject": None}
        result = self.client.request("POST", path, body=body, idempotent=True)
        if not isinstance(result, dict):
            raise ProviderError("parseExpression returned no result")
        return result
