"""Extract the HTTP examples of Microsoft Graph API reference pages into conformance test data.

Usage: ``python tools/extract_doc_examples.py [--add] DOCS_ROOT OUT_JSON PAGE@COMMIT...``

``DOCS_ROOT`` is a checkout of microsoftgraph/microsoft-graph-docs-contrib (or a folder holding some of
its pages under the same paths); each ``PAGE`` is a path under it, such as
``api-reference/v1.0/api/synchronization-synchronizationjob-get.md``, and ``COMMIT`` the docs commit it
was read at (kept with each example, as its source). A page marks each example with
an HTML comment holding ``{"blockType": "request", "name": ...}`` or ``{"blockType": "response"}``,
each followed by a fenced block: the request line, headers and body; the status line, headers and body.
Requests and responses are paired in order. Some pages leave an example unmarked: a fenced block
starting with a full Graph URL is then a request (named after its page), one starting with a status
line a response, whose type is the one the page's text names. The output lists, per example: the page
and version, the example's name, the request (method, path relative to the version, headers, body)
and the documented response (status, body, and the type the page declares for it). A body that is
not valid JSON is kept as text with ``"invalid": true`` (pages hold JavaScript object literals); the
conformance test decides how to read it. With ``--add``, OUT_JSON keeps the examples of the pages not
named, and those of the pages named are replaced (pages can then be read at different commits, a few
at a time).

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
    """(first line and headers, body text) of a fenced HTTP block.

    The body follows a blank line, or (as some pages write it) starts right under the status line."""
    lines = block.strip("\n").splitlines()
    for i, line in enumerate(lines):
        if not line.strip() or (i and line.lstrip()[:1] in ("{", "[")):
            return lines[:i], "\n".join(lines[i:]).strip()
    return lines, ""


def _body(text: str) -> dict[str, Any]:
    if not text:
        return {"json": None}
    try:
        return {"json": json.loads(text)}
    except ValueError:
        return {"text": text, "invalid": True}


def _declared_in_text(text: str) -> tuple[str | None, bool]:
    """The response type the page's text names ("... and a [synchronizationTemplate](...) object"),
    and whether it is a collection: what an example without a response marker is read against."""
    m = re.search(r"response code and (?:an? |a collection of )\[(\w+)\]\(", text)
    if m is None:
        return None, False
    return m.group(1), "a collection of [" in m.group(0)


def _blocks(text: str) -> list[tuple[int, str | None, str, str]]:
    """The fenced blocks of a page in order: (position, kind, marker comment, block).

    A block right after a request or response marker has that kind; a block no marker claims is a
    request when it starts with a full Graph URL, a response when it starts with a status line (some
    pages leave their examples unmarked), and is ignored otherwise."""
    blocks: list[tuple[int, str | None, str, str]] = []
    claimed: set[int] = set()
    for marker in _MARKER.finditer(text):
        fence = _FENCE.search(text, marker.end())
        if fence is None or fence.start() in claimed:
            continue
        claimed.add(fence.start())
        blocks.append((fence.start(), _block_type(marker.group(1)), marker.group(1), fence.group(1)))
    for fence in _FENCE.finditer(text):
        if fence.start() in claimed:
            continue
        first = fence.group(1).strip("\n").partition("\n")[0].strip()
        request = _REQUEST_LINE.match(first)
        if request is not None and _VERSION.match(request.group(2)):
            blocks.append((fence.start(), "request", "", fence.group(1)))
        elif _STATUS_LINE.match(first):
            blocks.append((fence.start(), "response", "", fence.group(1)))
    return sorted(blocks, key=lambda b: b[0])


def examples(page: str, text: str, commit: str) -> list[dict[str, Any]]:
    """The request/response pairs of one page, in order."""
    found: list[dict[str, Any]] = []
    pending: dict[str, Any] | None = None
    for _, kind, comment, block in _blocks(text):
        if kind not in ("request", "response"):
            continue
        lines, body = _split(block)
        headers = dict((k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:]) if v)
        if kind == "request":
            m = _REQUEST_LINE.match(lines[0].strip()) if lines else None
            if m is None:
                continue
            url = _VERSION.match(m.group(2))
            if url is None:
                continue
            headers.pop("Authorization", None)  # the test sends its own token
            # An unmarked example is named after its page.
            default = Path(page).stem.replace("-", "_") if not comment else f"example {len(found) + 1}"
            pending = {
                "page": page,
                "commit": commit,
                "version": url.group(1).lower(),
                "name": _name(comment) or default,
                "request": {"method": m.group(1), "path": url.group(2), "headers": headers, **_body(body)},
            }
        elif pending is not None:
            m = _STATUS_LINE.match(lines[0].strip()) if lines else None
            if m is None:
                continue
            declared = re.search(r'"@odata\.type"\s*:\s*"microsoft\.graph\.(\w+)"', comment)
            collection = bool(re.search(r'"isCollection"\s*:\s*true', comment))
            type_name = declared.group(1) if declared else None
            if type_name is None and body:
                type_name, collection = _declared_in_text(text)
            pending["response"] = {
                "status": int(m.group(1)),
                "type": type_name,
                "collection": collection,
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
