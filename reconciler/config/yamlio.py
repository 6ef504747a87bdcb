"""YAML reading for the desired state (and writing, for ``import``): the only module that sets up PyYAML.

Files are parsed by libyaml (``yaml.CSafeLoader``) into nodes, and plain values (dict, list, str, int,
float, bool, None) are built from those nodes here, under stricter rules than PyYAML's own constructor:

- a key given twice in one mapping is an error (PyYAML silently keeps the last one);
- only YAML's standard tags are accepted (``!!str``, ``!!int``, ``!!float``, ``!!bool``, ``!!null``,
  ``!!seq``, ``!!map``); no Python object is ever constructed;
- plain scalars resolve as in YAML 1.2's core schema, so ``no``, ``on`` or ``2026-11-26`` stay text;
- mapping keys are always strings, as written;
- aliases may not expand to more than ``MAX_ALIAS_NODES`` nodes per document, nor refer to themselves;
- merge keys (``<<: *defaults``) work as in YAML 1.1.

Positions are not copied into the values: each document keeps its root node, and ``Locator`` walks the
nodes when a position is asked for, which is only for the few values the loader reports or records.

``dump_yaml`` writes plain values back as YAML that reads as the same values under these rules.

No I/O: callers pass the bytes of a file they have already read, and write what they are given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.core.model import Origin, make_origin
from reconciler.errors import Diagnostic

__all__ = ["MAX_ALIAS_NODES", "MAX_DEPTH", "Document", "Locator", "dump_yaml", "parse_documents"]

# Nodes reached through aliases, per document: far above any real configuration, far below a
# "billion laughs" file (nine levels of ten aliases each).
MAX_ALIAS_NODES = 100_000
# The format is at most six levels deep; libyaml's own limit (1,000) would let Python recursion fail first.
MAX_DEPTH = 64

_P = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = _P + "str", _P + "int", _P + "float", _P + "bool", _P + "null"
_SEQ, _MAP, _MERGE = _P + "seq", _P + "map", _P + "merge"
# A key is kept as the text it is written as, whichever of these it resolves to.
_KEY_TAGS = frozenset((_STR, _INT, _FLOAT, _BOOL, _NULL))

_INT_RE = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT_RE = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_BOOL_RE = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)$")
_MERGE_RE = re.compile(r"^<<$")


# Plain scalars that may be something other than a string, by their first character.
_IMPLICIT: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
for _tag, _regexp, _firsts in (
    (_BOOL, _BOOL_RE, "tTfF"),
    (_INT, _INT_RE, "-+0123456789"),
    (_FLOAT, _FLOAT_RE, "-+.0123456789"),
    (_NULL, _NULL_RE, ["~", "n", "N", ""]),
    (_MERGE, _MERGE_RE, "<"),
):
    for _first in _firsts:
        _IMPLICIT.setdefault(_first, []).append((_tag, _regexp))


class _Loader(yaml.CSafeLoader):
    """libyaml's parser and composer, resolving plain scalars by YAML 1.2's core schema."""

    def __init__(self, stream: bytes | str) -> None:
        super().__init__(stream)
        # libyaml's composer calls descend_resolver(parent, index) and ascend_resolver() around every
        # node, for path resolvers, which are never used here. PyYAML's versions return at once, but a
        # Python call per node is a tenth of composing a large repository; these built-ins take the
        # same arguments, do nothing with them, and are called without entering the interpreter.
        self.descend_resolver = {}.get  # type: ignore[method-assign,assignment]
        self.ascend_resolver = tuple  # type: ignore[method-assign,assignment]

    # libyaml's composer calls this for every node; PyYAML's version also looks for path resolvers,
    # which we never use, and the time it takes shows on large repositories. Repositories repeat the
    # same keys and values over and over, so the tag of a short plain scalar is looked up once.
    def resolve(self, kind: type[Node], value: str | None, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode:
            if implicit[0] and value is not None:
                tag = _RESOLVED.get(value)
                if tag is None:
                    tag = _implicit_tag(value)
                    if len(value) <= _MAX_RESOLVED_LENGTH and len(_RESOLVED) < _MAX_RESOLVED:
                        _RESOLVED[value] = tag
                return tag
            return _STR
        return _SEQ if kind is SequenceNode else _MAP


# Plain scalar text -> its tag, for short texts, up to a bound (a hostile file cannot grow it further).
_RESOLVED: dict[str, str] = {}
_MAX_RESOLVED = 50_000
_MAX_RESOLVED_LENGTH = 64


def _implicit_tag(value: str) -> str:
    """The tag of a plain (unquoted, untagged) scalar under the rules above."""
    for tag, regexp in _IMPLICIT.get(value[:1], ()):
        if regexp.match(value):
            return tag
    return _STR


def _show_tag(tag: str) -> str:
    return "!!" + tag[len(_P) :] if tag.startswith(_P) else tag


class _Refused(Exception):
    """Stops building a document whose aliases or nesting go past the limits."""

    def __init__(self, node: Node, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


class _Builder:
    """Turns one document's node graph into plain values, collecting every problem it meets."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Diagnostic] = []
        self.seen: set[int] = set()  # collection nodes already built once: meeting one again is an alias
        self.active: set[int] = set()  # collection nodes being built: meeting one of these is a loop
        self.alias_depth = 0
        self.alias_nodes = 0
        self.depth = 0

    def problem(self, node: Node, message: str) -> None:
        mark = node.start_mark
        self.problems.append(Diagnostic(self.file, mark.line + 1, mark.column + 1, message))

    def build(self, node: Node) -> object:
        if self.alias_depth:
            self.alias_nodes += 1
            if self.alias_nodes > MAX_ALIAS_NODES:
                raise _Refused(node, f"aliases expand to more than {MAX_ALIAS_NODES} nodes")
        if type(node) is ScalarNode:
            return self.scalar(node)
        nid = id(node)
        if nid in self.active:
            raise _Refused(node, "an alias refers to the collection that contains it")
        aliased = nid in self.seen
        if aliased:
            self.alias_depth += 1
        else:
            self.seen.add(nid)
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Refused(node, f"nested more than {MAX_DEPTH} levels deep")
        self.active.add(nid)
        try:
            if type(node) is MappingNode:
                return self.mapping(node)
            return self.sequence(node)
        finally:
            self.active.discard(nid)
            self.depth -= 1
            if aliased:
                self.alias_depth -= 1

    def sequence(self, node: Node) -> list[object]:
        if node.tag != _SEQ:
            self.problem(node, f"tag {_show_tag(node.tag)} is not allowed: only YAML's standard tags are")
        build = self.build
        if self.alias_depth:
            return [build(item) for item in node.value]
        # Outside aliases nothing is counted, and a string needs no call: most values are strings.
        return [
            item.value if type(item) is ScalarNode and item.tag == _STR else build(item)
            for item in node.value
        ]

    def mapping(self, node: Node) -> dict[str, object]:
        if node.tag != _MAP:
            self.problem(node, f"tag {_show_tag(node.tag)} is not allowed: only YAML's standard tags are")
        result: dict[str, object] = {}
        first: dict[str, Node] = {}
        merged: list[Node] = []
        for key_node, value_node in node.value:
            if type(key_node) is not ScalarNode:
                self.problem(key_node, "a mapping key must be a plain value, not a list or mapping")
                continue
            tag = key_node.tag
            if tag == _MERGE:
                merged.append(value_node)
                continue
            if tag not in _KEY_TAGS:
                self.problem(key_node, f"tag {_show_tag(tag)} is not allowed: only YAML's standard tags are")
            key = key_node.value
            if key in first:
                line = first[key].start_mark.line + 1
                self.problem(key_node, f"duplicate key '{key}' (first given on line {line})")
                continue
            first[key] = key_node
            if type(value_node) is ScalarNode and value_node.tag == _STR and not self.alias_depth:
                result[key] = value_node.value  # what build() gives, without the call
            else:
                result[key] = self.build(value_node)
        if merged:
            self.merge(result, merged)
        return result

    def merge(self, result: dict[str, object], sources: list[Node]) -> None:
        # Keys written in the mapping win over merged ones; among merged mappings the first one wins.
        for source in sources:
            parts = source.value if type(source) is SequenceNode else [source]
            for part in parts:
                value = self.build(part)
                if not isinstance(value, dict):
                    self.problem(part, "a merge key (<<) takes a mapping or a list of mappings")
                    continue
                for key, item in value.items():
                    result.setdefault(key, item)

    def scalar(self, node: Node) -> object:
        tag, text = node.tag, node.value
        if tag == _STR:
            return text
        if tag == _INT and _INT_RE.match(text):
            try:
                if text.startswith(("0o", "0x")):
                    return int(text[2:], 8 if text[1] == "o" else 16)
                return int(text, 10)
            except ValueError:
                self.problem(node, "integer too large")
                return None
        if tag == _FLOAT and _FLOAT_RE.match(text):
            lowered = text.lower()
            if lowered.endswith((".inf", ".nan")):
                return float(lowered.replace(".", ""))
            return float(text)
        if tag == _BOOL and _BOOL_RE.match(text):
            return text[0] in "tT"
        if tag == _NULL and _NULL_RE.match(text):
            return None
        if tag in (_INT, _FLOAT, _BOOL, _NULL):
            self.problem(node, f"'{text}' is not a valid {_show_tag(tag)} value")
        elif tag == _MERGE:
            # '<<' used as a value rather than a key: keep it as the text it is.
            return text
        else:
            self.problem(node, f"tag {_show_tag(tag)} is not allowed: only YAML's standard tags are")
        return None


class Locator:
    """A position in a parsed document; walks the nodes to children only when asked."""

    __slots__ = ("_node",)

    def __init__(self, node: Node) -> None:
        self._node = node

    @property
    def line(self) -> int:
        line: int = self._node.start_mark.line
        return line + 1

    @property
    def col(self) -> int:
        col: int = self._node.start_mark.column
        return col + 1

    def origin(self, file: str) -> Origin:
        """This position as a model ``Origin`` in ``file``."""
        mark = self._node.start_mark
        return make_origin(file, mark.line + 1, mark.column + 1)

    @property
    def quoted(self) -> bool:
        """True for a single- or double-quoted scalar, whose text starts one column after the node."""
        return isinstance(self._node, ScalarNode) and self._node.style in ("'", '"')

    @property
    def flow(self) -> bool:
        """True for a collection written in flow style (``[a, b]`` or ``{a: b}``)."""
        node = self._node
        return isinstance(node, SequenceNode | MappingNode) and bool(node.flow_style)

    @property
    def single_line(self) -> bool:
        end_line: int = self._node.end_mark.line
        start_line: int = self._node.start_mark.line
        return end_line == start_line and (
            not isinstance(self._node, ScalarNode) or self._node.style not in ("|", ">")
        )

    def _lookup(self, name: str) -> tuple[Node, Node] | None:
        """The (key, value) nodes of ``name`` in this mapping: written keys first, then merged ones."""
        node = self._node
        if not isinstance(node, MappingNode):
            return None
        merged: list[Node] = []
        for pair in node.value:
            key_node = pair[0]
            if isinstance(key_node, ScalarNode):
                if key_node.value == name and key_node.tag != _MERGE:
                    return pair  # type: ignore[no-any-return]
                if key_node.tag == _MERGE:
                    merged.append(pair[1])
        for source in merged:
            for part in source.value if isinstance(source, SequenceNode) else [source]:
                found = Locator(part)._lookup(name)
                if found is not None:
                    return found
        return None

    def key(self, name: str) -> Locator | None:
        """The key ``name`` of this mapping, or None."""
        found = self._lookup(name)
        return None if found is None else Locator(found[0])

    def child(self, step: str | int) -> Locator | None:
        """The value under a key of this mapping, or an item of this sequence; None if absent."""
        if isinstance(step, int):
            node = self._node
            if isinstance(node, SequenceNode) and 0 <= step < len(node.value):
                return Locator(node.value[step])
            return None
        found = self._lookup(step)
        return None if found is None else Locator(found[1])

    def items(self) -> list[Locator]:
        """The items of this sequence (empty for anything else)."""
        node = self._node
        return [Locator(item) for item in node.value] if isinstance(node, SequenceNode) else []

    def find(self, path: tuple[str | int, ...], *, key: bool = False) -> Locator:
        """The deepest node along ``path``; with ``key``, the key of its last step when that is a name."""
        here = self
        for i, step in enumerate(path):
            if key and i == len(path) - 1 and isinstance(step, str):
                return here.key(step) or here
            nxt = here.child(step)
            if nxt is None:
                return here
            here = nxt
        return here


@dataclass(frozen=True, slots=True)
class Document:
    """One YAML document of a file: its plain value and a locator at its root node."""

    file: str
    index: int  # 0-based position among the file's documents
    value: object
    root: Locator


def parse_documents(file: str, data: bytes | str) -> tuple[list[Document], list[Diagnostic]]:
    """Every document of one file, or the problems that stop it from being read.

    A syntax error stops the file (libyaml cannot go on after one) and nothing of it is returned.
    Problems in one document (duplicate keys, tags, aliases) drop that document only.
    """
    docs: list[Document] = []
    problems: list[Diagnostic] = []
    try:
        nodes = list(yaml.compose_all(data, Loader=_Loader))  # _Loader builds no Python objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        text = exc.problem or exc.context or "unreadable"
        if exc.context and exc.problem:
            started = f" that starts on line {exc.context_mark.line + 1}" if exc.context_mark else ""
            text += f" ({exc.context}{started})"
        return [], [Diagnostic(file, line, col, f"YAML syntax error: {text}")]
    except yaml.YAMLError as exc:
        return [], [Diagnostic(file, 1, 1, f"YAML syntax error: {exc}")]
    for index, node in enumerate(nodes):
        builder = _Builder(file)
        try:
            value = builder.build(node)
        except _Refused as exc:
            builder.problem(exc.node, exc.message)
            value = None
        if builder.problems:
            problems.extend(builder.problems)
            continue
        docs.append(Document(file, index, value, Locator(node)))
    return docs, problems


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, quoting every string that YAML 1.1 *or* the rules above would read as
    another type (``no``, ``0o17``), so that what it writes reads back the same with any YAML reader.
    Lists are indented under their key, as people write them."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


for _first, _resolvers in _IMPLICIT.items():
    for _tag, _regexp in _resolvers:
        _Dumper.add_implicit_resolver(_tag, _regexp, [_first])


def dump_yaml(data: object) -> str:
    """Plain values as block-style YAML; mapping keys keep their order and long strings stay on one line."""
    text: str = yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1 << 16
    )
    return text
