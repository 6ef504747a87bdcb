"""Attribute mapping entries: each list of a configuration or AttributeMappings document, checked and read.

One entry sets a target from a source attribute, a constant or an expression, or removes a template
default row. Every problem is reported at its line; an entry with a problem is left out. Entries and
expressions that repeat across files are checked once (``MappingReader`` remembers the clean ones).

I/O: none, except the job template's default rows, read from the package once at the first removal.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
from typing import Any

from reconciler.config.declared import Report
from reconciler.config.onprem import OnPremDeclared, declared_for
from reconciler.config.schema import did_you_mean
from reconciler.config.yamlio import Document, Locator
from reconciler.core.model import (
    CREDENTIAL_DATA,
    PROTECTED_TARGETS,
    ApplyMode,
    Direction,
    Mapping,
    MappingKind,
    MappingOverride,
    Origin,
    make_override,
)
from reconciler.errors import Diagnostic, ExpressionError

__all__ = ["MappingReader", "check_expression"]

_VALUE_KEYS = ("source", "constant", "expression", "remove")
_KINDS_BY_KEY = {
    "source": MappingKind.DIRECT,
    "constant": MappingKind.CONSTANT,
    "expression": MappingKind.EXPRESSION,
}
_APPLY_MODES = {mode.value: mode for mode in ApplyMode}
_CREDENTIAL_DATA = CREDENTIAL_DATA.casefold()


@functools.cache
def _template_targets(obj: str, direction: Direction = Direction.AD_TO_ENTRA) -> frozenset[str]:
    """The target attributes of the template's default mappings of object type ``obj``.

    Loaded on the first removal only: most repositories remove nothing, and the template costs a read.
    """
    from reconciler.graph.reading import template_defaults_for

    return frozenset(m.target for m in template_defaults_for(direction) if m.object == obj)


def _attribute_checks() -> tuple[Any, Any, Any]:
    """The expression library's attribute catalog, reference lister and spelling warnings."""
    from reconciler.expressions import (
        KNOWN_ATTRIBUTES,
        expression_warnings,
        parse,
        referenced_attributes,
    )

    def referenced(text: str) -> set[str]:
        return set(referenced_attributes(parse(text)))

    return KNOWN_ATTRIBUTES, referenced, expression_warnings


def check_expression(
    text: str, origin: Origin, *, quoted: bool = False, single_line: bool = True
) -> list[Diagnostic]:
    """Problems of one expression, placed at FILE:LINE:COL of the offending character in the YAML.

    ``origin`` is where the scalar starts; a quoted scalar's text starts one column later. The exact
    column is known only for a scalar on one line; otherwise the scalar's start is given, and the
    column inside the expression is named in the message.
    """
    if not text.strip():
        return [Diagnostic(origin.file, origin.line, origin.col, "expression is empty")]
    from reconciler.expressions import parse

    try:
        parse(text)
    except ExpressionError as exc:
        if single_line:
            col = origin.col + exc.column - 1 + (1 if quoted else 0)
            return [Diagnostic(origin.file, origin.line, col, f"invalid expression: {exc.message}")]
        return [
            Diagnostic(
                origin.file,
                origin.line,
                origin.col,
                f"invalid expression: {exc.message} (column {exc.column} of the expression)",
            )
        ]
    return []


class MappingReader:
    """Reads mapping entries into overrides for one loading pass, reporting to ``report``."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.attribute_results: dict[tuple[str, str, str, frozenset[str]], list[str]] = {}
        # The on-premises attributes of the configuration whose own mappings are being read (none
        # for an AttributeMappings document): its mappings may read them without a warning.
        self.declaring: OnPremDeclared = {}
        self.expression_results: dict[tuple[str, bool, bool], list[Diagnostic]] = {}
        # Mapping entries read without a problem, by object type and entry: see read().
        self.clean_mappings: dict[tuple[Any, ...], Mapping | None] = {}

    def read(
        self,
        doc: Document,
        path: tuple[str, ...],
        obj: str,
        entries: list[dict[str, Any]],
        direction: Direction = Direction.AD_TO_ENTRA,
    ) -> list[MappingOverride]:
        """The mapping entries of one list, checked; entries with problems are reported and left out."""
        file = doc.file
        out: list[MappingOverride] = []
        first: dict[str, Origin] = {}
        protected = PROTECTED_TARGETS.get(obj, frozenset()) if direction is Direction.ENTRA_TO_AD else ()
        clean = self.clean_mappings
        declared = declared_for(self.declaring, obj)
        for entry, loc in zip(entries, doc.root.find(path).items(), strict=True):
            origin = loc.origin(file)
            target: str = entry["target"]
            folded = target.casefold()
            if folded in first:
                message = f"target '{target}' is mapped twice for {obj} (first on line {first[folded].line})"
                self.report.error(file, loc.child("target") or loc, message)
                continue
            first[folded] = origin
            if folded in protected:
                message = (
                    f"the {obj} mapping of '{target}' is the service's own for Entra ID -> AD (it matches "
                    "objects or carries membership); the docs say it must not be changed"
                )
                self.report.error(file, loc.child("target") or loc, message)
                continue
            # The same entry met before without a problem: the same mapping, and nothing to report.
            # Whether an entry has a problem depends on its values only (where it is only places the
            # message). This runs once per entry of every list, so it is written out here.
            try:
                mapping = clean[(obj, direction, declared, *entry.items())]
            except (KeyError, TypeError):  # new, or a value that cannot be a key: read it
                # A group mapping of the target container is the long form of spec.targetContainer and
                # is read like any other; giving both is reported by the configuration reader (load).
                reported = len(self.report.diagnostics)
                override = self.entry(file, obj, entry, loc, origin, direction, declared)
                if override is None:
                    continue
                out.append(override)
                if len(self.report.diagnostics) == reported:
                    # Remembered only when clean; a value that cannot be a key is not remembered.
                    with contextlib.suppress(TypeError):
                        clean[(obj, direction, declared, *entry.items())] = override.mapping
                continue
            out.append(make_override(obj, target, mapping, origin))
        return out

    def entry(
        self,
        file: str,
        obj: str,
        entry: dict[str, Any],
        loc: Locator,
        origin: Origin,
        direction: Direction,
        declared: frozenset[str] = frozenset(),
    ) -> MappingOverride | None:
        """One mapping entry not met before as an override, or None when it has problems (reported).
        ``declared``: the folded names of on-premises attributes the configuration declares for ``obj``."""
        target: str = entry["target"]
        given = [key for key in entry if key in _VALUE_KEYS]
        if len(given) != 1:
            if given:
                message = f"mapping of '{target}' has both {given[0]} and {given[1]}; give only one"
                self.report.error(file, loc.key(given[1]) or loc, message)
            else:
                message = f"mapping of '{target}' needs one of source, constant, expression or remove"
                self.report.error(file, loc, message)
            return None
        how = given[0]
        ok = True
        if target.casefold() == _CREDENTIAL_DATA:
            message = f"'{target}' cannot be mapped: password hash sync sets it; use spec.passwordHashSync"
            self.report.error(file, loc.child("target") or loc, message)
            ok = False
        if how == "remove":
            for extra in ("default", "apply"):
                if extra in entry:
                    self.report.error(
                        file, loc.key(extra) or loc, f"a removal of '{target}' takes no {extra}"
                    )
                    ok = False
            defaults = _template_targets(obj, direction)
            # The service matches target names without regard to case: so does this check.
            if ok and target.casefold() not in {d.casefold() for d in defaults}:
                # Removing what is not there would change nothing: it is a typo, or a misunderstanding.
                message = (
                    f"'{target}' is not a template default mapping of {obj}, so there is nothing to remove"
                    + (did_you_mean(target, defaults) or "; a removal names a template default mapping")
                )
                self.report.error(file, loc.child("target") or loc, message)
                ok = False
            return MappingOverride(obj, target, None, origin) if ok else None
        if how == "constant" and "default" in entry:
            message = f"mapping of '{target}': default goes with source or expression, not with constant"
            self.report.error(file, loc.key("default") or loc, message)
            ok = False
        elif how == "expression":
            problems = self.expression(file, entry["expression"], loc.child("expression") or loc)
            if problems:
                self.report.extend(problems)
                ok = False
        if not ok:
            return None
        if how in ("source", "expression") and direction is Direction.AD_TO_ENTRA:
            # The catalog is of AD attributes: an Entra ID -> AD mapping reads Entra attributes.
            for message in self.attribute_warnings(obj, how, entry[how], declared):
                self.report.warn(file, loc.child(how) or loc, f"mapping of '{target}': {message}")
        apply = _APPLY_MODES[entry["apply"]] if "apply" in entry else ApplyMode.ALWAYS
        mapping = Mapping(obj, target, _KINDS_BY_KEY[how], entry[how], entry.get("default"), apply)
        return MappingOverride(obj, target, mapping, origin)

    def attribute_warnings(
        self, obj: str, how: str, value: str, declared: frozenset[str] = frozenset()
    ) -> list[str]:
        """Source attributes not known for ``obj``, and spellings the reference writes otherwise.

        Only warnings: directory schemas are extended (extension attributes, custom AD attributes),
        so an unknown name may be right; most often it is a typo that would sync nothing."""
        key = (obj, how, value, declared)
        cached = self.attribute_results.get(key)
        if cached is not None:
            return cached
        messages: list[str] = []
        known, referenced, warnings_of = _attribute_checks()
        catalog = known.get(obj.casefold())
        names: set[str] = {value} if how == "source" else set()
        if how == "expression":
            try:
                names = set(referenced(value))
                messages.extend(w.message for w in warnings_of(value))
            except ExpressionError:
                names = set()  # already reported as an error
        if catalog:
            for name in sorted(names):
                if name.casefold() not in catalog and name.casefold() not in declared:
                    close = difflib.get_close_matches(name.casefold(), catalog, n=1, cutoff=0.8)
                    hint = f"; did you mean '{close[0]}'?" if close else ""
                    messages.append(f"'{name}' is not a known {obj} attribute of Active Directory{hint}")
        self.attribute_results[key] = messages
        return messages

    def expression(self, file: str, text: str, loc: Locator) -> list[Diagnostic]:
        # Mapping sets repeat the same expressions: check each text once, then move the result into place.
        cache_key = (text, loc.quoted, loc.single_line)
        cached = self.expression_results.get(cache_key)
        if cached is None:
            cached = check_expression(text, Origin("", 1, 1), quoted=loc.quoted, single_line=loc.single_line)
            self.expression_results[cache_key] = cached
        return [Diagnostic(file, d.line + loc.line - 1, d.col + loc.col - 1, d.message) for d in cached]
