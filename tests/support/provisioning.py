"""What the provisioning tests share: the example files, the objects they hold, and a CLI result."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "examples" / "configs"
CONTOSO_DIR = REPO / "examples" / "directory" / "contoso.yaml"
FABRIKAM_DIR = REPO / "examples" / "directory" / "fabrikam.yaml"

ADELE = "CN=Adele Vance,OU=Sales,DC=contoso,DC=com"
ALEX = "CN=Alex Wilber,OU=Research and Development,OU=Global,DC=contoso,DC=com"
LIDIA = "CN=Lidia Holloway,OU=Zürich\\, Schweiz,OU=Offices,DC=contoso,DC=com"
MEGAN = "CN=Megan Bowen,OU=Sales,DC=contoso,DC=com"
CASEY = "CN=Casey Jensen,OU=Sales,DC=contoso,DC=com"
PRADEEP = "CN=Pradeep Gupta,OU=Contractors,DC=contoso,DC=com"
SALES_TEAM = "CN=Sales Team,OU=Sales,DC=contoso,DC=com"
NESTOR = "CN=Nestor Wilke,OU=Staff,DC=fabrikam,DC=com"
ISAIAH = "CN=Isaiah Langer,OU=Staff,DC=fabrikam,DC=com"
JONI = "CN=Joni Sherman,OU=Staff,DC=fabrikam,DC=com"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Run = Callable[..., Result]


def decode(response: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two JSON strings of a provisionOnDemand response."""
    assert set(response) == {"key", "value"}
    assert isinstance(response["key"], str) and isinstance(response["value"], str)
    return json.loads(response["key"]), json.loads(response["value"])
