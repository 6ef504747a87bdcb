"""The synchronization endpoints: jobs and their actions (start, pause, restart, validateCredentials,
provisionOnDemand), job and template schemas (with functions, filterOperators, discover and
parseExpression), templates and secrets.

I/O: the tenant database, through the store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import orjson

from reconciler.emulator import documented, odata
from reconciler.emulator.replies import JSON, RAW_BODIES, Reply, Request, Shaper, graph_error
from reconciler.errors import ExpressionError, NotFoundError
from reconciler.graph.metadata import metadata

__all__ = ["SynchronizationEndpoints"]


class SynchronizationEndpoints(Shaper):
    """Handlers of the synchronization resources; ``GraphService`` routes requests to them."""

    # -- jobs ----------------------------------------------------------------------------------

    def _job(self, sp_id: str, job: Mapping[str, Any], version: str) -> JSON:
        return {**self._documented("synchronizationJob", job, version), "_sp": sp_id}

    def _list_jobs(self, sp_id: str, request: Request) -> Reply:
        jobs = [self._job(sp_id, j, request.version) for j in self.store.list_jobs(sp_id)]
        fragment = f"servicePrincipals('{sp_id}')/synchronization/jobs"
        return self._collection(request, "synchronizationJob", jobs, fragment, directory=False)

    def _create_job(self, sp_id: str, request: Request) -> Reply:
        template_id = request.body.get("templateId") if isinstance(request.body, Mapping) else None
        if not isinstance(template_id, str):
            return graph_error(400, "BadRequest", "templateId is required")
        job = self._documented(
            "synchronizationJob", self.store.create_job(sp_id, template_id), request.version
        )
        context = self._context(request, f"servicePrincipals('{sp_id}')/synchronization/jobs/$entity")
        return Reply(201, {"@odata.context": context, **job})

    def _get_job(self, sp_id: str, job_id: str, request: Request) -> Reply:
        job = self._job(sp_id, self.store.get_job(sp_id, job_id), request.version)
        fragment = f"servicePrincipals('{sp_id}')/synchronization/jobs/$entity"
        return self._entity(request, "synchronizationJob", job, fragment)

    def _delete_job(self, sp_id: str, job_id: str, request: Request) -> Reply:
        self.store.delete_job(sp_id, job_id)
        return Reply(204)

    def _job_action(self, sp_id: str, job_id: str, action: str, request: Request) -> Reply:
        action = action.lower()
        body = request.body
        if action == "start":
            self.store.start_job(sp_id, job_id)
        elif action == "pause":
            self.store.pause_job(sp_id, job_id)
        elif action == "restart":
            criteria = body.get("criteria") if isinstance(body, Mapping) else None
            self.store.restart_job(sp_id, job_id, criteria if isinstance(criteria, Mapping) else None)
        elif action == "validatecredentials":
            self.store.get_job(sp_id, job_id)
            return self._validate_credentials(sp_id, body)
        else:
            return self._provision_on_demand(sp_id, job_id, request)
        return Reply(204)

    def _validate_credentials_new(self, sp_id: str, request: Request) -> Reply:
        """``jobs/validateCredentials``: the credentials of a job not made yet (``templateId`` names it)."""
        body = request.body
        if not isinstance(body, Mapping) or not isinstance(body.get("templateId"), str):
            return graph_error(400, "BadRequest", "templateId is required")
        self.store.template_schema(body["templateId"])
        return self._validate_credentials(sp_id, body)

    def _validate_credentials(self, sp_id: str, body: Any) -> Reply:
        """204 when there are credentials to test: those given, or (``useSavedCredentials``) the saved ones.

        The emulator reaches no directory, so credentials that are present are taken as valid.
        """
        body = body if isinstance(body, Mapping) else {}
        given = body.get("credentials") or []
        saved = self.store.get_secrets(sp_id) if body.get("useSavedCredentials") else []
        if not given and not saved:
            return graph_error(
                400, "BadRequest", "No credentials to validate: give credentials or save them first."
            )
        return Reply(204)

    def _provision_on_demand(self, sp_id: str, job_id: str, request: Request) -> Reply:
        """One subject through the embedded tenant's on-demand provisioning (``provisioning.on_demand``)."""
        from reconciler.graph.identity import GROUP_PROVISIONING_TEMPLATE, PROVISIONING_TEMPLATE
        from reconciler.graph.reading import find_provisioning_rule
        from reconciler.provisioning.on_demand import provision_on_demand

        body = request.body
        job = self.store.get_job(sp_id, job_id)
        to_ad = job.get("templateId") == GROUP_PROVISIONING_TEMPLATE
        if job.get("templateId") != PROVISIONING_TEMPLATE and not to_ad:
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
        if to_ad:
            from reconciler.provisioning.to_ad import provision_to_ad

            links = subject.get("links")
            linked = links.get("members") if isinstance(links, Mapping) else None
            if not isinstance(linked, list | None) or not all(
                isinstance(m, Mapping) and isinstance(m.get("objectId"), str) for m in linked or []
            ):
                return graph_error(400, "BadRequest", "links.members must be subjects with an objectId")
            members = [str(m["objectId"]) for m in linked or []]
            result = provision_to_ad(self.store, sp_id, object_id, object_type, members)
        else:
            result = provision_on_demand(self.store, sp_id, object_id, object_type)
        context = self._context(request, "microsoft.graph.stringKeyStringValuePair")
        return Reply(200, {"@odata.context": context, **dict(result)})

    # -- schema ----------------------------------------------------------------------------------

    def _get_schema(self, sp_id: str, job_id: str, request: Request) -> Reply:
        select = request.options.get("select")
        properties = metadata(request.version).properties("graph.synchronizationSchema") or {}
        wanted = set(odata.select_names(select, properties, "synchronizationSchema")) if select else set()
        fragment = f"servicePrincipals('{sp_id}')/synchronization/jobs('{job_id}')/schema/$entity"
        context = self._context(request, fragment)
        if select and "directories" not in wanted:
            # The directory definitions are most of a schema; leave them out unless asked for.
            if RAW_BODIES.get() and wanted >= {"version", "synchronizationRules"}:
                # Everything else: the stored text as it is, when the store can give it so.
                text = self.store.get_schema_rules_json(sp_id, job_id)
                if text is not None:
                    head = b'{"@odata.context":' + orjson.dumps(context) + b","
                    return Reply(200, orjson.Fragment(head + text[1:].encode()))
            schema = self.store.get_schema_rules(sp_id, job_id)
        else:
            schema = self.store.get_schema(sp_id, job_id)
        return self._entity(request, "synchronizationSchema", schema, fragment)

    def _put_schema(self, sp_id: str, job_id: str, request: Request) -> Reply:
        if not isinstance(request.body, Mapping):
            return graph_error(400, "BadRequest", "the schema must be a JSON object")
        schema = {k: v for k, v in request.body.items() if not k.startswith("@odata.")}
        # Enum members are read whatever their case (the documented example writes "string"), and kept
        # in the metadata's spelling, as a GET of the service shows them.
        schema = metadata(request.version).canonical_enums(schema, "graph.synchronizationSchema")
        self.store.put_schema(sp_id, job_id, schema)
        return Reply(204)

    def _reset_schema(self, sp_id: str, job_id: str, request: Request) -> Reply:
        self.store.reset_schema(sp_id, job_id)
        return Reply(204)

    def _schema_owner(self, sp_id: str, owner: str, request: Request) -> None:
        """404 unless the job or template the schema path names exists."""
        if "/templates/" in request.path.lower():
            self.store.get_service_principal(sp_id)
            self.store.template_schema(owner)
        else:
            self.store.get_job(sp_id, owner)

    def _functions(self, sp_id: str, owner: str, request: Request) -> Reply:
        self._schema_owner(sp_id, owner, request)
        value = [dict(f) for f in documented.functions()]
        return Reply(200, {"@odata.context": self._context(request, "functions"), "value": value})

    def _filter_operators(self, sp_id: str, owner: str, request: Request) -> Reply:
        self._schema_owner(sp_id, owner, request)
        value = [dict(f) for f in documented.filter_operators()]
        return Reply(200, {"@odata.context": self._context(request, "filterOperators"), "value": value})

    def _discover(self, sp_id: str, owner: str, directory_id: str, request: Request) -> Reply:
        """The directory definition as discovered now: the schema's, with its discovery time set."""
        if "/templates/" in request.path.lower():
            self.store.get_service_principal(sp_id)
            schema = self.store.template_schema(owner)
        else:
            schema = self.store.get_schema(sp_id, owner)
        found = self.store.discover(schema, directory_id)
        found["discoveryDateTime"] = _now_iso()
        found.setdefault("discoverabilities", "AttributeNames,AttributeDataTypes,AttributeReadOnly")
        context = self._context(request, "microsoft.graph.directoryDefinition")
        return Reply(200, {"@odata.context": context, **found})

    def _parse_expression(self, sp_id: str, owner: str, request: Request) -> Reply:
        """``parseExpression``: 200 with parsingSucceeded false for an invalid expression (as the service).

        Parsing and evaluation are the project's own (``reconciler.expressions``), the same code a plan
        uses. The test input's ``properties`` are ``{"key", "value"}`` pairs (the documented example).
        """
        from reconciler import expressions

        self._schema_owner(sp_id, owner, request)
        body = request.body
        if not isinstance(body, Mapping) or not isinstance(body.get("expression"), str):
            return graph_error(400, "BadRequest", "expression is required")
        text = body["expression"]
        reply: JSON = {
            "@odata.context": self._context(request, "microsoft.graph.parseExpressionResponse"),
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
            reply["error"] = _public_error("ParsingError", str(exc))
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
                reply["error"] = _public_error("EvaluationError", str(exc))
                return Reply(200, reply)
            if value is None or isinstance(value, expressions.DoesNotFlow):
                values: list[Any] = []
            else:
                values = value if isinstance(value, list) else [value]
            reply["evaluationResult"] = [str(v) for v in values]
            reply["evaluationSucceeded"] = True
        return Reply(200, reply)

    # -- templates -------------------------------------------------------------------------------

    def _template(self, template: Mapping[str, Any], version: str) -> JSON:
        """A template with its schema inline, as the documented list of templates shows it."""
        shaped = self._documented("synchronizationTemplate", template, version)
        shaped["schema"] = self.store.template_schema(str(template["id"]))
        return shaped

    def _list_templates(self, sp_id: str, request: Request) -> Reply:
        templates = [self._template(t, request.version) for t in self.store.list_templates(sp_id)]
        fragment = f"servicePrincipals('{sp_id}')/synchronization/templates"
        return self._collection(request, "synchronizationTemplate", templates, fragment, directory=False)

    def _get_template(self, sp_id: str, template_id: str, request: Request) -> Reply:
        for template in self.store.list_templates(sp_id):
            if template["id"].lower() == template_id.lower():
                fragment = f"servicePrincipals('{sp_id}')/synchronization/templates/$entity"
                return self._entity(
                    request, "synchronizationTemplate", self._template(template, request.version), fragment
                )
        raise NotFoundError(
            f"synchronization template {template_id} not found", code="Request_ResourceNotFound"
        )

    def _get_template_schema(self, sp_id: str, template_id: str, request: Request) -> Reply:
        self.store.get_service_principal(sp_id)
        schema = self.store.template_schema(template_id)
        fragment = f"servicePrincipals('{sp_id}')/synchronization/templates('{template_id}')/schema/$entity"
        return self._entity(request, "synchronizationSchema", schema, fragment)

    # -- secrets ---------------------------------------------------------------------------------

    def _get_secrets(self, sp_id: str, request: Request) -> Reply:
        secrets = self.store.get_secrets(sp_id)
        context = self._context(request, f"servicePrincipals('{sp_id}')/synchronization/secrets")
        return Reply(200, {"@odata.context": context, "value": secrets})

    def _put_secrets(self, sp_id: str, request: Request) -> Reply:
        value = request.body.get("value") if isinstance(request.body, Mapping) else None
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            return graph_error(400, "BadRequest", 'the body must be {"value": [{"key", "value"}, ...]}')
        self.store.put_secrets(sp_id, value)
        return Reply(204)


def _public_error(code: str, message: str) -> JSON:
    return {"code": code, "message": message, "details": None, "innerError": None, "target": None}


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
