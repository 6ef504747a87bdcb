"""``--remote``: have the service itself parse every mapping expression (Graph ``parseExpression``).

Local parsing already catches what the documentation describes; the service is the final word, so a
reviewer can ask it too. Each distinct expression text is sent once. Nothing is written to the target.

I/O: requests to the target through its provider.
"""

from __future__ import annotations

from reconciler.core.model import DesiredState, MappingKind
from reconciler.errors import ConfigError, Diagnostic
from reconciler.providers.base import ParsesExpressions, Provider

__all__ = ["remote_expression_check"]


def remote_expression_check(state: DesiredState, provider: Provider) -> list[Diagnostic]:
    """An error diagnostic for every expression the service refuses to parse."""
    if not isinstance(provider, ParsesExpressions):
        raise ConfigError(
            f"--remote needs a target that can parse expressions (graph or graph+http://...); "
            f"{provider.target} cannot"
        )
    verdicts: dict[str, str | None] = {}
    found: dict[tuple[str, int, int, str], Diagnostic] = {}
    for config in state.configurations:
        for override in config.overrides:
            mapping = override.mapping
            if mapping is None or mapping.kind is not MappingKind.EXPRESSION:
                continue
            text = mapping.value
            if text not in verdicts:
                reply = provider.parse_expression(text)
                if reply.get("parsingSucceeded"):
                    verdicts[text] = None
                else:
                    error = reply.get("error") or {}
                    verdicts[text] = str(error.get("message") or "the service could not parse it")
            problem = verdicts[text]
            if problem is None:
                continue
            origin = override.origin
            file, line, col = (origin.file, origin.line, origin.col) if origin else (config.name, 1, 1)
            message = f"mapping of '{override.target}': the service rejects the expression: {problem}"
            # a shared mapping set reaches several configurations from one place: report it once
            found.setdefault((file, line, col, message), Diagnostic(file, line, col, message))
    return sorted(found.values())
