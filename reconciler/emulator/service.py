"""The Graph endpoints of the synchronization API, answered from a ``TenantStore``.

``GraphService.handle(method, path, query, body)`` takes one request (path relative to ``/v1.0``) and
returns a ``Reply`` with the status, JSON body and headers the service would give, in the response
shapes of the v1.0 metadata (``@odata.context``, ``value`` collections, ``@odata.nextLink`` paging). The
store's errors become Graph error bodies. No sockets here: ``server`` adds HTTP, auth, latency and faults.

I/O: the tenant database, through the store.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import orjson

from reconciler.errors import ExpressionError, NotFoundError, ProviderError, TransientProviderError
from reconciler.graph.metadata import metadata
from reconciler.tenant.store import TenantStore

__all__ = ["RAW_BODIES", "GraphService", "Reply", "graph_error"]

JSON = dict[str, Any]

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 999


@dataclass(slots=True)
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


# Whether a reply body may be JSON text already encoded (an ``orjson.Fragment``) rather than JSON data:
# only for a caller that encodes the reply with orjson and does not look inside it.
RAW_BODIES: ContextVar[bool] = ContextVar("RAW_BODIES", default=False)


def graph_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Reply:
    """A Graph error reply; ``server`` fills in ``innerError`` (date and request ids)."""
    return Reply(status, {"error": {"code": code, "message": message}}, dict(headers or {}))


def _plain_message(exc: ProviderError) -> str:
    # ProviderError's text ends with "(HTTP n, code c)"; the Graph body carries those separately.
    text = str(exc)
    return re.sub(r" \((HTTP \d+|code [^,)]+|request-id [^,)]+)(, [^)]*)?\)$", "", text)


def _error_from(exc: ProviderError) -> Reply:
    if isinstance(exc, TransientProviderError):
        return graph_error(503, exc.code or "serviceNotAvailable", _plain_message(exc), {"Retry-After": "1"})
    if isinstance(exc, NotFoundError):
        return graph_error(404, exc.code or "Request_ResourceNotFound", _plain_message(exc))
    status = exc.status or 400
    return graph_error(
        status, exc.code or ("Conflict" if status == 409 else "BadRequest"), _plain_message(exc)
    )


# --------------------------------------------------------------------------------------------------
# $filter, as far as the provider and a user poking around need it


_STRING = r"'((?:[^']|'')*)'"
_CLAUSES: list[tuple[re.Pattern[str], Callable[[JSON, str], bool]]] = [
    (
        re.compile(rf"applicationTemplateId\s+eq\s+{_STRING}", re.I),
        lambda sp, v: sp.get("applicationTemplateId") == v,
    ),
    (re.compile(rf"appId\s+eq\s+{_STRING}", re.I), lambda sp, v: sp.get("appId") == v),
    (re.compile(rf"id\s+eq\s+{_STRING}", re.I), lambda sp, v: sp.get("id") == v),
    (re.compile(rf"displayName\s+eq\s+{_STRING}", re.I), lambda sp, v: sp.get("displayName") == v),
    (
        re.compile(rf"startswith\(\s*displayName\s*,\s*{_STRING}\s*\)", re.I),
        lambda sp, v: str(sp.get("displayName") or "").casefold().startswith(v.casefold()),
    ),
    (
        re.compile(rf"tags/any\(\s*(\w+)\s*:\s*\1\s+eq\s+{_STRING}\s*\)", re.I),
        lambda sp, v: v in (sp.get("tags") or []),
    ),
    (
        re.compile(rf"servicePrincipalNames/any\(\s*(\w+)\s*:\s*\1\s+eq\s+{_STRING}\s*\)", re.I),
        lambda sp, v: v in (sp.get("servicePrincipalNames") or []),
    ),
]
_AND = re.compile(r"\s+and\s+", re.I)


def _bind(test: Callable[[JSON, str], bool], value: str) -> Callable[[JSON], bool]:
    return lambda sp: test(sp, value)


def parse_filter(text: str) -> Callable[[JSON], bool]:
    """A predicate for ``text``: clauses above joined by ``and``. ValueError when unsupported."""
    predicates: list[Callable[[JSON], bool]] = []
    pos = 0
    text = text.strip()
    while True:
        for pattern, test in _CLAUSES:
            m = pattern.match(text, pos)
            if m:
                predicates.append(_bind(test, m.groups()[-1].replace("''", "'")))
                pos = m.end()
                break
        else:
            raise ValueError(f"unsupported filter at {text[pos : pos + 40]!r}")
        if pos == len(text):
            break
        joiner = _AND.match(text, pos)
        if joiner is None:
            raise ValueError(f"unsupported filter at {text[pos : pos + 40]!r}")
        pos = joiner.end()
    return lambda sp: all(p(sp) for p in predicates)


def _select(item: JSON, select: str | None) -> JSON:
    if not select:
        return item
    wanted = {s.strip() for s in select.split(",") if s.strip()} | {"id"}
    return {k: v for k, v in item.items() if k in wanted}


# --------------------------------------------------------------------------------------------------
# routes

_SEG = r"([^/]+)"
_SP = rf"/servicePrincipals/{_SEG}"
_JOB = rf"{_SP}/synchronization/jobs/{_SEG}"
_TEMPLATE = rf"{_SP}/synchronization/templates/{_SEG}"

Handler = Callable[..., Reply]


class GraphService:
    """The endpoints the Graph provider uses, over one tenant store."""

    def __init__(
        self, store: TenantStore, *, page_size: int = DEFAULT_PAGE_SIZE, validate: bool = True
    ) -> None:
        self.store = store
        self.page_size = page_size
        self.validate = validate
        self._routes: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
            (re.compile(rf"/applicationTemplates/{_SEG}/instantiate"), {"POST": self._instantiate}),
            (re.compile(r"/servicePrincipals"), {"GET": self._list_sps}),
            (
                re.compile(_SP),
                {"GET": self._get_sp, "PATCH": self._patch_sp, "DELETE": self._delete_sp},
            ),
            (re.compile(r"/applications"), {"GET": self._list_apps}),
            (
                re.compile(r"/applications\(appId='((?:[^']|'')*)'\)"),
                {"GET": self._get_app_by_app_id, "DELETE": self._delete_app_by_app_id},
            ),
            (re.compile(rf"/applications/{_SEG}"), {"GET": self._get_app, "DELETE": self._delete_app}),
            (re.compile(rf"{_SP}/synchronization/jobs"), {"GET": self._list_jobs, "POST": self._create_job}),
            (re.compile(_JOB), {"GET": self._get_job, "DELETE": self._delete_job}),
            (re.compile(rf"{_JOB}/(start|pause|restart|provisionOnDemand)"), {"POST": self._job_action}),
            (
                re.compile(rf"{_JOB}/schema"),
                {"GET": self._get_schema, "PUT": self._put_schema, "DELETE": self._reset_schema},
            ),
            (re.compile(rf"{_JOB}/schema/parseExpression"), {"POST": self._parse_expression_job}),
            (re.compile(rf"{_SP}/synchronization/templates"), {"GET": self._list_templates}),
            (re.compile(_TEMPLATE), {"GET": self._get_template}),
            (re.compile(rf"{_TEMPLATE}/schema"), {"GET": self._get_template_schema}),
            (re.compile(rf"{_TEMPLATE}/schema/parseExpression"), {"POST": self._parse_expression_template}),
            (
                re.compile(rf"{_SP}/synchronization/secrets"),
                {"GET": self._get_secrets, "PUT": self._put_secrets},
            ),
        ]

    # -- dispatch ----------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: Mapping[str, str], body: Any, *, base_url: str) -> Reply:
        """One request; ``path`` is relative to ``/v1.0`` and not yet percent-decoded."""
        method = method.upper()
        path = "/" + path.strip("/")
        for pattern, handlers in self._routes:
            m = pattern.fullmatch(path)
            if m is None:
                continue
            handler = handlers.get(method)
            if handler is None:
                return graph_error(405, "Request_BadRequest", f"{method} is not supported on {path}")
            if self.validate and method in ("POST", "PUT", "PATCH"):
                problems = metadata().check(method, path, body)
                if problems:
                    return graph_error(400, "BadRequest", problems[0])
            args = [urllib.parse.unquote(g) for g in m.groups()]
            try:
                return handler(*args, query=query, body=body, base_url=base_url)
            except ProviderError as exc:
                return _error_from(exc)
        segment = path.strip("/").split("/")[-1]
        return graph_error(400, "BadRequest", f"Resource not found for the segment '{segment}'.")

    @staticmethod
    def _context(base_url: str, fragment: str) -> str:
        return f"{base_url}/$metadata#{fragment}"

    # -- applications and service principals -------------------------------------------------------

    def _instantiate(self, template_id: str, *, query: Any, body: Any, base_url: str) -> Reply:
        if not isinstance(body, Mapping) or not isinstance(body.get("displayName"), str):
            return graph_error(400, "BadRequest", "displayName is required")
        created = self.store.instantiate(body["displayName"], template_id)
        reply = {"@odata.context": self._context(base_url, "microsoft.graph.applicationServicePrincipal")}
        reply.update(created)
        return Reply(201, reply)

    def _list_sps(self, *, query: Mapping[str, str], body: Any, base_url: str) -> Reply:
        items = self.store.list_service_principals()
        text = query.get("$filter")
        if text:
            try:
                predicate = parse_filter(text)
            except ValueError as exc:
                return graph_error(400, "Request_UnsupportedQuery", str(exc))
            items = [sp for sp in items if predicate(sp)]
        try:
            top = min(int(query.get("$top") or self.page_size), MAX_PAGE_SIZE)
            skip = int(query.get("$skiptoken") or 0)
        except ValueError:
            return graph_error(400, "Request_BadRequest", "invalid $top or $skiptoken")
        if top < 1:
            return graph_error(400, "Request_BadRequest", "$top must be at least 1")
        select = query.get("$select")
        page = [_select(sp, select) for sp in items[skip : skip + top]]
        fragment = "servicePrincipals" + (f"({select})" if select else "")
        reply: JSON = {"@odata.context": self._context(base_url, fragment), "value": page}
        if skip + top < len(items):
            params = {k: v for k, v in query.items() if k != "$skiptoken"}
            params["$skiptoken"] = str(skip + top)
            reply["@odata.nextLink"] = f"{base_url}/servicePrincipals?{urllib.parse.urlencode(params)}"
        return Reply(200, reply)

    def _get_sp(self, sp_id: str, *, query: Mapping[str, str], body: Any, base_url: str) -> Reply:
        sp = _select(self.store.get_service_principal(sp_id), query.get("$select"))
        return Reply(200, {"@odata.context": self._context(base_url, "servicePrincipals/$entity"), **sp})

    def _patch_sp(self, sp_id: str, *, query: Any, body: Any, base_url: str) -> Reply:
        if not isinstance(body, Mapping):
            return graph_error(400, "BadRequest", "the body must be a JSON object")
        self.store.patch_service_principal(sp_id, {k: v for k, v in body.items() if "@odata." not in k})
        return Reply(204)

    def _delete_sp(self, sp_id: str, *, query: Any, body: Any, base_url: str) -> Reply:
        self.store.delete_service_principal(sp_id)
        return Reply(204)

    def _list_apps(self, *, query: Mapping[str, str], body: Any, base_url: str) -> Reply:
        items = self.store.list_applications()
        text = query.get("$filter")
        if text:
            try:
                predicate = parse_filter(text)
            except ValueError as exc:
                return graph_error(400, "Request_UnsupportedQuery", str(exc))
            items = [app for app in items if predicate(app)]
        value = [_select(app, query.get("$select")) for app in items]
        return Reply(200, {"@odata.context": self._context(base_url, "applications"), "value": value})

    def _app_by_app_id(self, app_id: str) -> JSON:
        app_id = app_id.replace("''", "'")  # an OData string literal
        for app in self.store.list_applications():
            if app.get("appId") == app_id:
                return app
        raise NotFoundError(f"application with appId {app_id} not found", code="Request_ResourceNotFound")

    def _get_app(self, id: str, *, query: Any, body: Any, base_url: str) -> Reply:
        app = self.store.get_application(id)
        return Reply(200, {"@odata.context": self._context(base_url, "applications/$entity"), **app})

    def _get_app_by_app_id(self, app_id: str, *, query: Any, body: Any, base_url: str) -> Reply:
        app = self._app_by_app_id(app_id)
        return Reply(200, {"@odata.context": self._context(base_url, "applications/$entity"), **app})

    def _delete_app(self, id: str, *, query: Any, body: Any, base_url: str) -> Reply:
        self.store.delete_application(id)
        return Reply(204)

    def _delete_app_by_app_id(self, app_id: str, *, query: Any, body: Any, base_url: str) -> Reply:
        self.store.delete_application(self._app_by_app_id(app_id)["id"])
        return Reply(204)

    # -- jobs ----------------------------------------------------------------------------------

    def _list_jobs(self, sp_id: str, *, query: Any, body: Any, base_url: str) -> Reply:
        jobs = self.store.list_jobs(sp_id)
        context = self._context(base_url, f"servicePrincipals('{sp_id}')/synchronization/jobs")
        return Reply(200, {"@odata.context": context, "value": jobs})

    def _create_job(self, sp_id: str, *, query: Any, body: Any, base_url: str) -> Reply:
        template_id = body.get("templateId") if isinstance(body, Mapping) else None
        if not isinstance(template_id, str):
            return graph_error(400, "BadRequest", "templateId is required")
        job = self.store.create_job(sp_id, template_id)
        context = self._context(base_url, f"servicePrincipals('{sp_id}')/synchronization/jobs/$entity")
        return Reply(201, {"@odata.context": context, **job})

    def _get_job(self, sp_id: str, job_id: str, *, query: Any, body: Any, base_url: str) -> Reply:
        job = self.store.get_job(sp_id, job_id)
        context = self._context(base_url, f"servicePrincipals('{sp_id}')/synchronization/jobs/$entity")
        return Reply(200, {"@odata.context": context, **job})

    def _delete_job(self, sp_id: str, job_id: str, *, query: Any, body: Any, base_url: str) -> Reply:
        self.store.delete_job(sp_id, job_id)
        return Reply(204)

    def _job_action(
        self, sp_id: str, job_id: str, action: str, *, query: Any, body: Any, base_url: str
    ) -> Reply:
        if action == "start":
            self.store.start_job(sp_id, job_id)
        elif action == "pause":
            self.store.pause_job(sp_id, job_id)
        elif action == "restart":
            criteria = body.get("criteria") if isinstance(body, Mapping) else None
            self.store.restart_job(sp_id, job_id, criteria if isinstance(criteria, Mapping) else None)
        else:
            return self._provision_on_demand(sp_id, job_id, body, base_url)
        return Reply(204)

    def _provision_on_demand(self, sp_id: str, job_id: str, body: Any, base_url: str) -> Reply:
        """One subject through the embedded tenant's on-demand provisioning (``tenant.provisioning``)."""
        from reconciler.graph.shapes import PROVISIONING_TEMPLATE, find_provisioning_rule
        from reconciler.tenant.provisioning import provision_on_demand

        job = self.store.get_job(sp_id, job_id)
        if job.get("templateId") != PROVISIONING_TEMPLATE:
            return graph_error(400, "BadRequest", f"job {job_id} does not provision on demand")
        parameters = body.get("parameters") if isinstance(body, Mapping) else None
        first: Mapping[str, Any] = {}
        if isinstance(parameters, list) and parameters and isinstance(parameters[0], Mapping):
            first = parameters[0]
        subjects = first.get("subjects")
        if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], Mapping):
            return graph_error(400, "BadRequest", "parameters must name one rule with exactly one subject")
        rule = find_provisioning_rule(self.store.get_schema_rules(sp_id, job_id))
        if rule is None or first.get("ruleId") != rule.get("id"):
            return graph_error(400, "BadRequest", f"ruleId {first.get('ruleId')!r} is not a rule of this job")
        subject = subjects[0]
        object_id, object_type = subject.get("objectId"), subject.get("objectTypeName")
        if not isinstance(object_id, str) or not isinstance(object_type, str):
            return graph_error(400, "BadRequest", "a subject needs objectId and objectTypeName")
        result = provision_on_demand(self.store, sp_id, object_id, object_type)
        context = self._context(base_url, "microsoft.graph.stringKeyStringValuePair")
        return Reply(200, {"@odata.context": context, **dict(result)})

    # -- schema ----------------------------------------------------------------------------------

    def _get_schema(
        self, sp_id: str, job_id: str, *, query: Mapping[str, str], body: Any, base_url: str
    ) -> Reply:
        select = query.get("$select")
        wanted = {s.strip() for s in (select or "").split(",") if s.strip()}
        context = self._context(
            base_url, f"servicePrincipals('{sp_id}')/synchronization/jobs('{job_id}')/schema/$entity"
        )
        if select and "directories" not in wanted:
            # The directory definitions are most of a schema; leave them out unless asked for.
            if RAW_BODIES.get() and wanted >= {"version", "synchronizationRules"}:
                # Everything else: the stored text as it is, when the store can give it so.
                text = self.store.get_schema_rules_json(sp_id, job_id)
                if text is not None:
                    head = b'{"@odata.context":' + orjson.dumps(context) + b","
                    return Reply(200, orjson.Fragment(head + text[1:].encode()))
            schema = _select(self.store.get_schema_rules(sp_id, job_id), select)
        else:
            schema = _select(self.store.get_schema(sp_id, job_id), select)
        return Reply(200, {"@odata.context": context, **schema})

    def _put_schema(self, sp_id: str, job_id: str, *, query: Any, body: Any, base_url: str) -> Reply:
        if not isinstance(body, Mapping):
            return graph_error(400, "BadRequest", "the schema must be a JSON object")
        self.store.put_schema(sp_id, job_id, {k: v for k, v in body.items() if not k.startswith("@odata.")})
        return Reply(204)

    def _reset_schema(self, sp_id: str, job_id: str, *, query: Any, body: Any, base_url: str) -> Reply:
        self.store.reset_schema(sp_id, job_id)
        return Reply(204)

    def _parse_expression_job(
        self, sp_id: str, job_id: str, *, query: Any, body: Any, base_url: str
    ) -> Reply:
        self.store.get_job(sp_id, job_id)
        return self._parse_expression(body, base_url)

    def _parse_expression_template(
        self, sp_id: str, template_id: str, *, query: Any, body: Any, base_url: str
    ) -> Reply:
        self.store.get_service_principal(sp_id)
        self.store.template_schema(template_id)
        return self._parse_expression(body, base_url)

    def _parse_expression(self, body: Any, base_url: str) -> Reply:
        """``parseExpression``: 200 with parsingSucceeded false for an invalid expression (as the service)."""
        from reconciler import expressions

        if not isinstance(body, Mapping) or not isinstance(body.get("expression"), str):
            return graph_error(400, "BadRequest", "expression is required")
        text = body["expression"]
        reply: JSON = {
            "@odata.context": self._context(base_url, "microsoft.graph.parseExpressionResponse"),
            "error": None,
            "evaluationResult": None,
            "evaluationSucceeded": False,
            "parsedExpression": None,
            "parsingSucceeded": False,
        }
        try:
            expressions.parse(text)
            tree = dict(expressions.to_service_tree(text))
        except ExpressionError as exc:
            reply["error"] = {
                "code": "ParsingError",
                "message": str(exc),
                "details": None,
                "innerError": None,
                "target": None,
            }
            return Reply(200, reply)
        tree.setdefault("expression", text)
        reply["parsedExpression"] = tree
        reply["parsingSucceeded"] = True
        test_input = body.get("testInputObject")
        properties = test_input.get("properties") if isinstance(test_input, Mapping) else None
        if isinstance(properties, list):
            attributes = {str(p.get("key")): p.get("value") for p in properties if isinstance(p, Mapping)}
            try:
                value = expressions.evaluate(text, attributes)
            except ExpressionError as exc:
                reply["error"] = {
                    "code": "EvaluationError",
                    "message": str(exc),
                    "details": None,
                    "innerError": None,
                    "target": None,
                }
                return Reply(200, reply)
            if value is None or isinstance(value, expressions.DoesNotFlow):
                values: list[Any] = []
            else:
                values = value if isinstance(value, list) else [value]
            reply["evaluationResult"] = [str(v) for v in values]
            reply["evaluationSucceeded"] = True
        return Reply(200, reply)

    # -- templates -------------------------------------------------------------------------------

    def _list_templates(self, sp_id: str, *, query: Any, body: Any, base_url: str) -> Reply:
        templates = self.store.list_templates(sp_id)
        context = self._context(base_url, f"servicePrincipals('{sp_id}')/synchronization/templates")
        return Reply(200, {"@odata.context": context, "value": templates})

    def _get_template(self, sp_id: str, template_id: str, *, query: Any, body: Any, base_url: str) -> Reply:
        for template in self.store.list_templates(sp_id):
            if template["id"] == template_id:
                context = self._context(
                    base_url, f"servicePrincipals('{sp_id}')/synchronization/templates/$entity"
                )
                return Reply(200, {"@odata.context": context, **template})
        raise NotFoundError(
            f"synchronization template {template_id} not found", code="Request_ResourceNotFound"
        )

    def _get_template_schema(
        self, sp_id: str, template_id: str, *, query: Any, body: Any, base_url: str
    ) -> Reply:
        self.store.get_service_principal(sp_id)
        schema = self.store.template_schema(template_id)
        context = self._context(
            base_url,
            f"servicePrincipals('{sp_id}')/synchronization/templates('{template_id}')/schema/$entity",
        )
        return Reply(200, {"@odata.context": context, **schema})

    # -- secrets ---------------------------------------------------------------------------------

    def _get_secrets(self, sp_id: str, *, query: Any, body: Any, base_url: str) -> Reply:
        secrets = self.store.get_secrets(sp_id)
        context = self._context(base_url, f"servicePrincipals('{sp_id}')/synchronization/secrets")
        return Reply(200, {"@odata.context": context, "value": secrets})

    def _put_secrets(self, sp_id: str, *, query: Any, body: Any, base_url: str) -> Reply:
        value = body.get("value") if isinstance(body, Mapping) else None
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            return graph_error(400, "BadRequest", 'the body must be {"value": [{"key", "value"}, ...]}')
        self.store.put_secrets(sp_id, value)
        return Reply(204)
