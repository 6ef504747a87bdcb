"""``reconciler preview``: the Entra ID attributes a configuration's mappings give sample objects.

Evaluates the configuration's effective mappings (template defaults, overrides, removals) for each
on-premises object of ``--object FILE`` (a directory file, one object, or a list of objects) and shows
the resulting attributes, with each object's scope. ``--against`` evaluates the mappings the target
holds now as well and shows before and after side by side, which is what a reviewer of a mapping change
wants to see.

Exit 1 when an object meets an error in the desired mappings (an ``Error("...")`` call or an expression
that cannot be evaluated), so that CI can catch it.

I/O: reads the desired files and the object file; reads the target only with ``--against`` or an
explicit ``--target`` (otherwise the embedded AD2AAD template gives the defaults); writes stdout.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import click

from reconciler.cli.errors import EXIT_ERROR, ExitCode
from reconciler.cli.options import format_option, paths_argument, target_option
from reconciler.cli.output import echo_lines, echo_warnings
from reconciler.config.load import load_paths
from reconciler.core.model import OBJECT_TYPES, Desired, Mapping, Observed, Scope, effective_mappings
from reconciler.directory import Directory, DirectoryObject, read_objects
from reconciler.errors import NotFoundError
from reconciler.mapping_eval import (
    DnKey,
    Evaluation,
    MappingEvaluator,
    Outcome,
    OutcomeKind,
    ScopeDecision,
    ScopeMatcher,
    dn_compare_key,
    show_value,
)
from reconciler.providers import open_target
from reconciler.tenant.template import template_defaults

__all__ = ["preview"]

_MAX_CELL = 48
_NOTES = {
    OutcomeKind.DEFAULT: "default",
    OutcomeKind.NULL: "null",
    OutcomeKind.DOES_NOT_FLOW: "does not flow",
    OutcomeKind.NOT_APPLIED: "on create only",
}


@dataclass(frozen=True, slots=True)
class _Side:
    """One set of mappings to evaluate: the desired ones, or the target's current ones."""

    label: str
    mappings: tuple[Mapping, ...]
    scope: Scope
    domain: str

    def evaluator(self, object_type: str) -> MappingEvaluator:
        parameters = {"DomainFQDN": self.domain, "DomainNetBios": self.domain.split(".", 1)[0].upper()}
        return MappingEvaluator(self.mappings, object_type=object_type, parameters=parameters)


def _cell(outcome: Outcome | None) -> str:
    if outcome is None:
        return "-"
    if outcome.kind is OutcomeKind.ERROR:
        prefix = "Error: " if outcome.raised else "failed: "
        return prefix + (outcome.error or "")
    text = show_value(outcome.value)
    note = _NOTES.get(outcome.kind)
    if text is None:
        return f"({note})" if note else "-"
    return f"{text} ({note})" if note and outcome.kind is OutcomeKind.DEFAULT else text


def _clip(text: str, width: int = _MAX_CELL) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [min(_MAX_CELL, max(len(r[i]) for r in rows)) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [_clip(c).ljust(w) for c, w in zip(row[:-1], widths, strict=False)]
        lines.append((indent + "  ".join([*cells, row[-1]])).rstrip())
    return lines


def _scope_text(decision: ScopeDecision) -> str:
    return ("in scope: " if decision.in_scope else "OUT OF SCOPE: ") + decision.reason


def _outcome_json(outcome: Outcome | None) -> dict[str, object] | None:
    if outcome is None:
        return None
    data: dict[str, object] = {"outcome": outcome.kind.value, "value": outcome.value}
    if outcome.error is not None:
        data["error"] = outcome.error
        data["raised"] = outcome.raised
    data["mapping"] = outcome.mapping.describe()
    return data


class _Previewer:
    def __init__(
        self, after: _Side, before: _Side | None, directory: Directory, create: bool, changes_only: bool
    ) -> None:
        self.after = after
        self.before = before
        self.directory = directory
        self.create = create
        self.changes_only = changes_only
        self._evaluators: dict[tuple[str, str], MappingEvaluator] = {}
        self._matchers = {"after": ScopeMatcher(after.scope)}
        if before is not None:
            self._matchers["before"] = ScopeMatcher(before.scope)
        memberships: dict[DnKey, list[str]] = {}
        for group, member in directory.memberships():
            memberships.setdefault(dn_compare_key(member), []).append(group)
        self._member_of = memberships

    def _evaluate(self, side: _Side, which: str, obj: DirectoryObject) -> Evaluation:
        key = (which, obj.object_type)
        evaluator = self._evaluators.get(key)
        if evaluator is None:
            evaluator = self._evaluators[key] = side.evaluator(obj.object_type)
        return evaluator.evaluate(obj.attributes, create=self.create)

    def run(self, obj: DirectoryObject) -> tuple[dict[str, object], list[str], bool]:
        """(JSON form, text lines, whether the desired mappings met an error) for one object."""
        member_of = self._member_of.get(dn_compare_key(obj.dn), [])
        after_scope = self._matchers["after"].check(obj.dn, member_of)
        head = f"{obj.dn} ({obj.object_type})"
        after = self._evaluate(self.after, "after", obj)
        data: dict[str, object] = {
            "dn": obj.dn,
            "type": obj.object_type,
            "scope": {"inScope": after_scope.in_scope, "reason": after_scope.reason},
        }
        lines = [head, "  " + _scope_text(after_scope)]
        if self.before is None:
            by_target = after.by_target()
            data["attributes"] = {t: _outcome_json(o) for t, o in by_target.items()}
            rows = [["ATTRIBUTE", "VALUE", "MAPPING"]]
            rows += [[o.target, _cell(o), _clip(o.mapping.describe(), 60)] for o in after.outcomes]
            lines += _table(rows) if len(rows) > 1 else ["  (no mappings for this object type)"]
            return data, lines, not after.ok
        before = self._evaluate(self.before, "before", obj)
        before_scope = self._matchers["before"].check(obj.dn, member_of)
        if before_scope.in_scope != after_scope.in_scope:
            lines.append("  before: " + _scope_text(before_scope))
        data["scopeBefore"] = {"inScope": before_scope.in_scope, "reason": before_scope.reason}
        old, new = before.by_target(), after.by_target()
        targets = sorted(set(old) | set(new), key=lambda t: (t.casefold(), t))
        rows = [[" ", "ATTRIBUTE", "BEFORE (target)", "AFTER (desired)"]]
        attributes: dict[str, object] = {}
        changed = 0
        for target in targets:
            o, n = old.get(target), new.get(target)
            b, a = _cell(o), _cell(n)
            mark = "+" if o is None else "-" if n is None else "~" if b != a else " "
            changed += mark != " "
            if mark != " " or not self.changes_only:
                rows.append([mark, target, b, a])
            attributes[target] = {
                "before": _outcome_json(o),
                "after": _outcome_json(n),
                "changed": mark != " ",
            }
        data["attributes"] = attributes
        if len(rows) > 1:
            lines += _table(rows)
        lines.append(f"  {changed} of {len(targets)} attributes change")
        return data, lines, not after.ok


def _observed_by_name(observed: Sequence[Observed], name: str) -> Observed | None:
    for o in observed:
        if o.name == name or o.id == name:
            return o
    return None


@click.command(short_help="The Entra ID attributes a configuration's mappings give objects.")
@paths_argument
@click.option("--config", "config_name", required=True, metavar="NAME", help="The configuration to preview.")
@click.option(
    "--object",
    "object_file",
    required=True,
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Sample on-premises objects: a directory file, one object, or a list of objects (YAML).",
)
@click.option(
    "--against",
    is_flag=True,
    help="Also evaluate the mappings the target holds now, and show before and after side by side.",
)
@click.option(
    "--update",
    is_flag=True,
    help="Evaluate as an update of an existing cloud object: on-create mappings and defaults do not apply.",
)
@click.option("--changes-only", is_flag=True, help="With --against: show only the attributes that change.")
@target_option
@format_option("text", "json")
def preview(
    paths: tuple[str, ...],
    config_name: str,
    object_file: str,
    against: bool,
    update: bool,
    changes_only: bool,
    target: str | None,
    fmt: str,
) -> None:
    """Show the Entra ID attributes configuration NAME's mappings give the objects of FILE.

    PATH... are the desired files (default: the current folder). With --against, the target's current
    mappings are evaluated too (before) next to the desired ones (after). Exit 1 when a desired mapping
    fails for an object (an Error("...") call, or an expression that cannot be evaluated).
    """
    loaded = load_paths(list(paths) or ["."])
    echo_warnings(loaded.warnings)
    desired: Desired | None = loaded.state.by_name().get(config_name)
    if desired is None:
        known = ", ".join(sorted(loaded.state.by_name())) or "none"
        raise NotFoundError(f"no configuration named {config_name!r} in the desired state (found: {known})")
    directory = read_objects(object_file)
    before: _Side | None = None
    if against or target:
        # A preview shows mappings; a tenant not made yet simply holds none.
        provider = open_target(target, read_only=True, missing_is_empty=True)
        try:
            defaults = provider.template_defaults()
            observed = _observed_by_name(provider.read_all(), config_name) if against else None
        finally:
            provider.close()
        if against:
            if observed is None:
                click.echo(
                    f"note: {config_name} is not on {provider.target}; every attribute is new", err=True
                )
                before = _Side(provider.target, (), Scope.all(), desired.settings.domain)
            else:
                before = _Side(provider.target, observed.mappings, observed.scope, observed.settings.domain)
    else:
        defaults = template_defaults()
    # An apply edits the rows the target holds (a new configuration: the template's): rows the
    # desired state does not name stay as they are.
    base = before.mappings if before is not None and before.mappings else defaults
    after = _Side(
        "desired",
        tuple(effective_mappings(base, desired.overrides).values()),
        desired.scope,
        desired.settings.domain,
    )
    if changes_only and before is None:
        raise click.UsageError("--changes-only goes with --against")
    previewer = _Previewer(after, before, directory, create=not update, changes_only=changes_only)
    results: list[dict[str, object]] = []
    failed = 0
    first = True
    # OUs and containers are only there to hold objects: the configuration provisions none of them.
    containers = [o.dn for o in directory.objects if o.object_type not in OBJECT_TYPES]
    if before is not None and fmt == "text":
        click.echo(f"Before: the mappings on {before.label}. After: the desired mappings.\n")
    for obj in directory.objects:
        if obj.object_type not in OBJECT_TYPES:
            continue
        data, lines, error = previewer.run(obj)
        failed += error
        if fmt == "json":
            results.append(data)
            continue
        if not first:
            click.echo()
        first = False
        echo_lines(lines)
    if fmt == "json":
        document: dict[str, object] = {"configuration": config_name}
        if before is not None:
            document["before"] = before.label
        document.update(objects=results, notProvisioned=containers)
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        if containers:
            click.echo(
                f"\n{len(containers)} organizational unit(s) or container(s) not shown: not provisioned."
            )
        if failed:
            click.echo(f"\n{failed} object(s) failed a mapping.")
    if failed:
        raise ExitCode(EXIT_ERROR)
