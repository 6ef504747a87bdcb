"""Finding the configurations on a Graph target: which service principals may hold one.

A configuration's principal is made from a Cloud Sync application template (listed by
``applicationTemplateId``, per direction); or it carries our tags (made in the portal and adopted);
or, for the domains asked for (``look_up_domains``), it is named after the AD domain as the portal
names it. A principal not made from a template counts only when it holds a provisioning job. Should
the service refuse a filter, every principal is listed and filtered here.

I/O: HTTP requests through the provider's ``GraphClient``.
"""

from __future__ import annotations

import itertools
import re
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence

from reconciler.core.model import Direction
from reconciler.errors import NotFoundError, ProviderError
from reconciler.graph.checks import check_service_principal
from reconciler.graph.client import BatchItem, GraphClient
from reconciler.graph.identity import (
    GROUP_TEMPLATE_APP_ID,
    JSON,
    MANAGED_TAG,
    TEMPLATE_APP_ID,
    from_template,
    main_job,
    name_tag,
    parse_tags,
)
from reconciler.graph.paths import PAGE_SIZE, SP_SELECT, body_of, jobs_in, jobs_path, odata, values

__all__ = ["GraphListing"]

# A display name as the portal gives a configuration's principal: the AD domain's DNS name.
_DNS_NAME = re.compile(r"(?i)(?=.{1,253}$)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}")


class GraphListing:
    """The listing half of the ``graph`` target (``GraphProvider`` is one): pages of the principals
    that may hold a configuration."""

    client: GraphClient
    # Domains whose portal-made configurations are looked up by display name (look_up_domains).
    _domains: frozenset[str] | None

    def _list_sps(
        self, odata_filter: str | None = None, *, template: bool = True, template_id: str = TEMPLATE_APP_ID
    ) -> Iterator[list[JSON]]:
        """Pages of service principals made from application template ``template_id`` (by default the
        AD2AAD one; any service principal when not ``template``), narrowed by ``odata_filter``.

        Should the service refuse the filter, every service principal is listed and filtered here.
        """
        template_filter = f"applicationTemplateId eq {odata(template_id)}"
        wanted = " and ".join(f for f in (template_filter if template else None, odata_filter) if f)
        params = {"$select": SP_SELECT, "$top": PAGE_SIZE}
        pages = self.client.pages("/servicePrincipals", {"$filter": wanted, **params})
        try:
            first = next(pages)
        except ProviderError as exc:
            if exc.status != 400:
                raise
            pages = self.client.pages("/servicePrincipals", params)
            first = next(pages)
        else:
            odata_filter = None  # the service did the filtering
        for page in itertools.chain([first], pages):
            checked = [check_service_principal(sp) for sp in page]
            made = Direction.ENTRA_TO_AD if template_id == GROUP_TEMPLATE_APP_ID else Direction.AD_TO_ENTRA
            kept = [sp for sp in checked if from_template(sp, made)] if template else checked
            yield [sp for sp in kept if self._matches(sp, odata_filter)]

    def _list_configurations(self) -> Iterator[list[JSON]]:
        """Pages of the principals that may hold a configuration: those made from the template, then
        those carrying our tag that were not (configurations made in the portal and adopted), then
        those named after a domain asked for (``look_up_domains``) that hold a provisioning job."""
        seen: set[str] = set()
        names: set[str] = set()
        for page in self._list_sps():
            seen.update(sp["id"] for sp in page)
            names.update(str(sp.get("displayName") or "").casefold() for sp in page)
            yield page
        # Entra ID -> AD configurations: principals of their own template.
        for page in self._list_sps(template_id=GROUP_TEMPLATE_APP_ID):
            fresh = [sp for sp in page if sp["id"] not in seen]
            seen.update(sp["id"] for sp in fresh)
            yield fresh
        for page in self._list_sps(f"tags/any(t:t eq {odata(MANAGED_TAG)})", template=False):
            fresh = [sp for sp in page if sp["id"] not in seen]
            seen.update(sp["id"] for sp in fresh)
            # Ours only if it holds a provisioning job: a tag alone does not make a configuration.
            yield self._holding_provisioning_jobs(fresh)
        if self._domains is None:
            yield from self._named_like_domains(seen)
            return
        domains = sorted(d for d in self._domains if d.casefold() not in names)
        if domains:
            yield [sp for sp in self._by_display_names(domains) if sp["id"] not in seen]

    def _named_like_domains(self, seen: set[str]) -> Iterator[list[JSON]]:
        """Every principal not listed yet whose display name is a DNS name (as the portal names a
        configuration's), that holds a provisioning job: one listing of every principal (999 a page),
        and the jobs of those candidates 20 to a ``$batch``."""
        for page in self.client.pages("/servicePrincipals", {"$select": SP_SELECT, "$top": PAGE_SIZE}):
            candidates = [
                sp
                for sp in map(check_service_principal, page)
                if sp["id"] not in seen and _DNS_NAME.fullmatch(str(sp.get("displayName") or ""))
            ]
            seen.update(sp["id"] for sp in candidates)
            yield self._holding_provisioning_jobs(candidates)

    def look_up_domains(self, domains: Iterable[str] | None) -> None:
        """Also find the configurations of ``domains`` made in the portal, whatever their principal's
        ``applicationTemplateId`` (Microsoft's own example of a Cloud Sync principal shows null).

        The portal names the principal after the AD domain: each domain is looked up by display name
        (20 to a ``$batch``) and a principal found counts only when it holds an ``AD2AADProvisioning``
        job. Domains whose principal the template listing found already are not asked for.

        None: every principal whose display name is a DNS name is a candidate (one listing of every
        principal of the tenant; for ``import``, which has no desired state to take domains from).
        """
        self._domains = None if domains is None else frozenset(d for d in domains if d)

    def _by_display_names(self, names: Sequence[str]) -> list[JSON]:
        """Principals named ``names`` (any template) that hold a provisioning job."""
        items = []
        for name in names:
            query = urllib.parse.urlencode(
                {"$filter": f"displayName eq {odata(name)}", "$select": SP_SELECT, "$top": PAGE_SIZE},
                quote_via=urllib.parse.quote,
            )
            items.append(BatchItem("GET", f"/servicePrincipals?{query}"))
        found: dict[str, JSON] = {}
        refused: set[str] = set()
        for name, result in zip(names, self.client.batch(items), strict=True):
            if isinstance(result, ProviderError) and result.status == 400:
                refused.add(name.casefold())  # the filter refused: looked for in a full listing below
                continue
            for sp in values(body_of(result), f"the service principals named {name!r}"):
                checked = check_service_principal(sp)
                if str(checked.get("displayName") or "").casefold() == name.casefold():
                    found.setdefault(checked["id"], checked)
        if refused:
            for page in self.client.pages("/servicePrincipals", {"$select": SP_SELECT, "$top": PAGE_SIZE}):
                for sp in map(check_service_principal, page):
                    if str(sp.get("displayName") or "").casefold() in refused:
                        found.setdefault(sp["id"], sp)
        return self._holding_provisioning_jobs(list(found.values()))

    def _holding_provisioning_jobs(self, sps: list[JSON]) -> list[JSON]:
        """Those of ``sps`` made from the template, or holding an ``AD2AADProvisioning`` job (their
        jobs read 20 to a ``$batch``)."""
        others = [sp for sp in sps if not from_template(sp)]
        if not others:
            return sps
        results = self.client.batch([BatchItem("GET", jobs_path(sp["id"])) for sp in others])
        holding = set()
        for sp, result in zip(others, results, strict=True):
            if isinstance(result, NotFoundError):
                continue  # deleted since it was listed
            if main_job(jobs_in(body_of(result), sp["id"])) is not None:
                holding.add(sp["id"])
        return [sp for sp in sps if from_template(sp) or sp["id"] in holding]

    @staticmethod
    def _matches(sp: JSON, odata_filter: str | None) -> bool:
        # The client-side twin of the few filters used below (only after the service refused one).
        if odata_filter is None:
            return True
        if odata_filter.startswith("tags/any"):
            tag = odata_filter.split(" eq ", 1)[1].rstrip(")")[1:-1].replace("''", "'")
            return tag in (sp.get("tags") or [])
        if odata_filter.startswith("displayName eq "):
            name = odata_filter[len("displayName eq ") :][1:-1].replace("''", "'")
            return bool(sp.get("displayName") == name)
        return True

    def _find_managed(self, name: str) -> list[JSON]:
        """The configurations our tags say are managed as ``name``: made from the template, or (made
        in the portal and adopted) holding a provisioning job."""
        found: list[JSON] = []
        for page in self._list_sps(f"tags/any(t:t eq {odata(name_tag(name))})", template=False):
            for sp in self._holding_provisioning_jobs(page):
                tags = parse_tags(sp.get("tags") or [])
                if tags.managed and tags.name == name:
                    found.append(sp)
        return found
