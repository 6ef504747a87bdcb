"""Credentials for Graph requests: which token a target gets, and from where.

``RECONCILER_GRAPH_TOKEN`` when set (checked to go into a header as it is); else, for Microsoft's own
Graph hosts only, azure-identity's credential chain (imported on first use), whose tokens are cached
until shortly before they expire; else none (an emulator started without ``--token``). A token for
the real tenant is never sent to an address the user typed for something else.

I/O: the environment, and azure-identity's chain (which may ask Microsoft Entra ID for a token). No
token is ever logged, echoed or put into an error message.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any, Protocol

from reconciler.errors import AuthenticationError

__all__ = [
    "GRAPH_HOSTS",
    "GRAPH_SCOPE_SUFFIX",
    "TOKEN_ENV",
    "AzureIdentityToken",
    "NoToken",
    "StaticToken",
    "TokenProvider",
    "check_token",
    "missing_credential",
    "token_provider_for",
]

TOKEN_ENV = "RECONCILER_GRAPH_TOKEN"
GRAPH_SCOPE_SUFFIX = "/.default"
# Microsoft Graph in the global, US government and China clouds: the only hosts that get tokens from
# the azure-identity chain.
GRAPH_HOSTS = frozenset(
    ("graph.microsoft.com", "graph.microsoft.us", "dod-graph.microsoft.us", "microsoftgraph.chinacloudapi.cn")
)


class TokenProvider(Protocol):
    #: what to tell the user when the service refuses the credentials (never the token itself)
    rejected_hint: str

    def token(self) -> str | None:
        """A bearer token, or None to send no Authorization header."""
        ...

    def invalidate(self) -> bool:
        """Forget a token the service rejected; True when asking again may give a different one."""
        ...


class NoToken:
    """No credentials: for an emulator started without ``--token``."""

    rejected_hint = f"no token was sent; set {TOKEN_ENV} to the bearer token the target expects"

    def token(self) -> str | None:
        return None

    def invalidate(self) -> bool:
        return False


class StaticToken:
    """A bearer token given as is (``RECONCILER_GRAPH_TOKEN``); it cannot be refreshed."""

    rejected_hint = (
        f"the token in {TOKEN_ENV} was refused (expired, or not for Microsoft Graph); set a fresh one"
    )

    def __init__(self, value: str) -> None:
        self._value = value.strip()

    def __repr__(self) -> str:
        return "StaticToken(<hidden>)"

    def token(self) -> str | None:
        return self._value

    def invalidate(self) -> bool:
        return False


_SECRET_VARIABLES = ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE")


def missing_credential(env: Mapping[str, str] | None = None) -> str:
    """Which variable or sign-in is missing, judged from the environment azure-identity reads."""
    env = os.environ if env is None else env
    ids = [v for v in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID") if env.get(v)]
    if ids:
        absent = [v for v in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID") if v not in ids]
        if absent:
            return f"{ids[0]} is set but {absent[0]} is not"
        if not any(env.get(v) for v in _SECRET_VARIABLES):
            return "AZURE_TENANT_ID and AZURE_CLIENT_ID are set but none of " + ", ".join(_SECRET_VARIABLES)
        return "the AZURE_* credentials were refused by Microsoft Entra ID"
    return (
        f"set {TOKEN_ENV}, or AZURE_TENANT_ID and AZURE_CLIENT_ID with a secret, certificate or "
        "federated token, or sign in with `az login` (or run with a managed identity)"
    )


class AzureIdentityToken:
    """Tokens from azure-identity's ``DefaultAzureCredential``, cached until shortly before they expire.

    The chain covers environment credentials, workload identity federation (CI), managed identity and
    the Azure CLI; the library is imported on first use so that other targets never load it.
    """

    rejected_hint = (
        "the token from azure-identity was refused; check which identity signed in (AZURE_* variables, "
        "workload identity, managed identity or `az login`) and its tenant"
    )
    # Renew this long before expiry, so that a token never runs out during a request.
    _MARGIN = 300.0

    def __init__(self, scope: str, credential: Any = None) -> None:
        self.scope = scope
        self._credential = credential
        self._token: str | None = None
        self._expires_on = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AzureIdentityToken(scope={self.scope!r})"

    def _get_credential(self) -> Any:
        if self._credential is None:
            try:
                from azure.identity import DefaultAzureCredential
            except ImportError as exc:  # pragma: no cover - a declared dependency
                raise AuthenticationError(
                    f"azure-identity is not installed; set {TOKEN_ENV} to a bearer token instead"
                ) from exc
            # azure-identity logs every credential of its chain that failed as a warning, several
            # hundred characters that Python prints to stderr when no logging is set up; the error
            # raised in token() says what is missing in one line. Records still reach handlers an
            # application sets up itself.
            quiet = logging.getLogger("azure.identity")
            if not any(isinstance(h, logging.NullHandler) for h in quiet.handlers):
                quiet.addHandler(logging.NullHandler())
            # The interactive browser stays off: this runs in pipelines as often as at a desk.
            self._credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
        return self._credential

    def token(self) -> str | None:
        with self._lock:
            if self._token is not None and time.time() < self._expires_on - self._MARGIN:
                return self._token
            try:
                from azure.core.exceptions import ClientAuthenticationError
            except ImportError:  # pragma: no cover - azure-core comes with azure-identity
                ClientAuthenticationError = Exception  # type: ignore[misc,assignment]
            try:
                access = self._get_credential().get_token(self.scope)
            except ClientAuthenticationError:
                # azure-identity's own message lists every credential of its chain, several hundred
                # characters; one line saying what is missing serves better.
                raise AuthenticationError(
                    f"no Microsoft Graph credentials: {missing_credential()} "
                    "(sign-in: docs/graph.md, 'Pointing at a tenant')"
                ) from None
            self._token = str(access.token)
            self._expires_on = float(access.expires_on)
            return self._token

    def invalidate(self) -> bool:
        with self._lock:
            had = self._token is not None
            self._token = None
            self._expires_on = 0.0
        return had


def check_token(value: str, where: str) -> None:
    """Refuse a bearer token that cannot go into an HTTP header as it is; the token is never quoted."""
    if not value.isascii():
        raise AuthenticationError(
            f"the token in {where} holds a character that is not ASCII; set the token alone"
        )
    if any(not (0x21 <= ord(ch) <= 0x7E) for ch in value):
        raise AuthenticationError(
            f"the token in {where} holds a space, a line break or a control character; set the token alone"
        )


def token_provider_for(base_url: str, env: Mapping[str, str] | None = None) -> TokenProvider:
    """``RECONCILER_GRAPH_TOKEN`` when set; else azure-identity for Microsoft's own Graph hosts only.

    An emulator or proxy never gets credentials from the azure-identity chain: a token for the real
    tenant must not be sent to an address the user typed for something else.
    """
    env = os.environ if env is None else env
    value = env.get(TOKEN_ENV, "").strip()
    if value:
        check_token(value, TOKEN_ENV)
        return StaticToken(value)
    parts = urllib.parse.urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and host in GRAPH_HOSTS and parts.port in (None, 443):
        return AzureIdentityToken(f"https://{host}{GRAPH_SCOPE_SUFFIX}")
    return NoToken()
