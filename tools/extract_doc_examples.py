"""Extract the HTTP examples of Microsoft Graph API reference pages into conformance test data.

Usage: ``python tools/extract_doc_examples.py [--add] DOCS_ROOT OUT_JSON PAGE@COMMIT...``

``DOCS_ROOT`` is a checkout of microsoftgraph/microsoft-graph-docs-contrib (or a folder holding some of
its pages under the same paths); each ``PAGE`` is a path under it, such as
``api-reference/v1.0/api/synchronization-synchronizationjob-get.md``, and ``COMMIT`` the docs commit it
was read at (kept with each example, as its source). A page marks each example with
an HTML comment holding ``{"blockType": "request", "name": ...}`` or ``{"blockType": "response"}``,
each followed by a fenced block: the request line, headers and body; the status line, headers and body.
Requests and responses are paired in order. The output lists, per example: the page and version, the
example's name, the request (method, path relative to the version, headers, body) and the documented
response (status, body, and the type the page declares for it). A body that is not valid JSON is kept
as text with ``"invalid": true`` (pages hold JavaScript object literals); the conformance test decides
how to read it. With ``--add``, OUT_JSON keeps the examples of the pages not named, and those of the
pages named are replaced (pages can then be read at different commits, a few at a time).

I/O: reads the pages (each at most 1 MiB), writes OUT_JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

MAX_PAGE_BYTES = 1024 * 1024

_MARKER = re.compile(r"<!--\s*(\{.*?\})\s*-->", re.S)
_FENCE = re.compile(r"```[A-Za-z-]*\n(.*?)```", re.S)
_REQUEST_LINE = re.compile(r"^(GET|POST|PUT|PATCH|DELETE)\s+(\S+)")
_STATUS_LINE = re.compile(r"^HTTP/1\.1\s+(\d{3})")
_VERSION = re.compile(r"^https://graph\.microsoft\.com/(v1\.0|beta)(/.*)$", re.I)


def _block_type(comment: str) -> str | None:
    m = re.search(r'"blockType"\s*:\s*"(\w+)"', comment)
    return m.group(1) if m else None


def _name(comment: str) -> str | None:
    m = re.search(r'"name"\s*:\s*"([^"]+)"', comment)
    return m.group(1) if m else None


def _split(block: str) -> tuple[list[str], str]:
    """(first line and headers, body text) of a fenced HTTP block."""
    head, _, body = block.strip("\n").partition("\n\n")
    return head.splitlines(), body.strip()


def _body(text: str) -> dict[str, Any]:
    if not text:
        return {"json": None}
    try:
        return {"json": json.loads(text)}
    except ValueError:
        return {"text": text, "invalid": True}


def examples(page: str, text: str, commit: str) -> list[dict[str, Any]]:
    """The request/response pairs of one page, in order."""
    found: list[dict[str, Any]] = []
    pending: dict[str, Any] | None = None
    for marker in _MARKER.finditer(text):
        kind = _block_type(marker.group(1))
        if kind not in ("request", "response"):
            continue
        fence = _FENCE.search(text, marker.end())
        if fence is None:
            continue
        lines, body = _split(fence.group(1))
        headers = dict(
            (k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:]) if v
        )
        if kind == "request":
            m = _REQUEST_LINE.match(lines[0].strip()) if lines else None
            if m is None:
                continue
            url = _VERSION.match(m.group(2))
            if url is None:
                continue
            headers.pop("Authorization", None)  # the test sends its own token
            pending = {
                "page": page,
                "commit": commit,
                "version": url.group(1).lower(),
                "name": _name(marker.group(1)) or f"example {len(found) + 1}",
                "request": {"method": m.group(1), "path": url.group(2), "headers": headers, **_body(body)},
            }
        elif pending is not None:
            m = _STATUS_LINE.match(lines[0].strip()) if lines else None
            if m is None:
                continue
            declared = re.search(r'"@odata\.type"\s*:\s*"microsoft\.graph\.(\w+)"', marker.group(1))
            pending["response"] = {
                "status": int(m.group(1)),
                "type": declared.group(1) if declared else None,
                "collection": bool(re.search(r'"isCollection"\s*:\s*true', marker.group(1))),
                **_body(body),
            }
            found.append(pending)
            pending = None
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("pages", nargs="+", metavar="PAGE@COMMIT")
    parser.add_argument("--add", action="store_true", help="keep the examples of other pages in OUT_JSON")
    args = parser.parse_args(argv)
    named = {item.partition("@")[0] for item in args.pages}
    result: list[dict[str, Any]] = []
    if args.add and args.out.is_file():
        result = [e for e in json.loads(args.out.read_text(encoding="utf-8")) if e["page"] not in named]
    for item in args.pages:
        page, _, commit = item.partition("@")
        path = args.root / page
        if not path.is_file() or path.stat().st_size > MAX_PAGE_BYTES:
            raise SystemExit(f"{page}: not a file of at most {MAX_PAGE_BYTES} bytes")
        result += examples(page, path.read_text(encoding="utf-8"), commit)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(result)} examples, {len(named)} pages read")
    return 0


if __name__ == "__main__":
    sys.exit(main())
