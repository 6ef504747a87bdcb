"""Syntax-tree node types of attribute-mapping expressions. Pure data; no I/O.

Every node records where it was found (``start``/``end``: 0-based offsets into the expression text,
end exclusive; -1 when the node was built rather than parsed). Positions never take part in equality.

Equality follows what the provisioning service stores, so that a tree read back from the service
compares equal to the tree of the text that produced it:

* positions are ignored;
* number literals (``8``, ``-10``, ``&HF``) and bare enum words (``vbTextCompare``) are equal to string
  literals of the same text, because the service stores all three as the same string constant;
* empty argument slots at the end of an argument list are ignored (``Join("@", [a], )`` equals
  ``Join("@", [a])``), because the service drops them. Empty slots before a filled one still count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "Attribute",
    "BinaryOp",
    "Call",
    "Identifier",
    "Literal",
    "Missing",
    "Node",
    "Number",
    "Parameter",
    "String",
    "walk",
]


@dataclass(frozen=True, slots=True, eq=False)
class Node:
    """Base of every node."""

    start: int = field(default=-1, kw_only=True, compare=False, repr=False)
    end: int = field(default=-1, kw_only=True, compare=False, repr=False)

    @property
    def column(self) -> int:
        """1-based column of the node in its expression text (1 when unknown)."""
        return self.start + 1 if self.start >= 0 else 1

    def _key(self) -> tuple[object, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Node):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


@dataclass(frozen=True, slots=True, eq=False)
class Attribute(Node):
    """``[name]``: the value of a source attribute."""

    name: str

    def _key(self) -> tuple[object, ...]:
        return ("attribute", self.name)


@dataclass(frozen=True, slots=True, eq=False)
class Literal(Node):
    """Base of the constants: the service stores every one of them as the string ``text``."""

    @property
    def text(self) -> str:
        raise NotImplementedError

    def _key(self) -> tuple[object, ...]:
        return ("constant", self.text)


@dataclass(frozen=True, slots=True, eq=False)
class String(Literal):
    """``"text"``: a string constant; ``value`` is the text with escapes resolved."""

    value: str

    @property
    def text(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True, eq=False)
class Number(Literal):
    """A whole number as written: ``8``, ``-10`` or the hexadecimal ``&HF7``."""

    literal: str

    @property
    def text(self) -> str:
        return self.literal

    @property
    def value(self) -> int:
        if self.literal[:2] in ("&H", "&h"):
            return int(self.literal[2:], 16)
        return int(self.literal)


@dataclass(frozen=True, slots=True, eq=False)
class Identifier(Literal):
    """A bare enum word such as ``vbTextCompare`` or ``UTF8``; only valid in an enum parameter."""

    name: str

    @property
    def text(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True, eq=False)
class Parameter(Node):
    """``%DomainFQDN%``: a value the service fills in per configuration."""

    name: str

    def _key(self) -> tuple[object, ...]:
        return ("parameter", self.name)


@dataclass(frozen=True, slots=True, eq=False)
class Missing(Node):
    """An empty argument slot, as in ``Replace([mail], "@a.com", , , "", , )``."""

    def _key(self) -> tuple[object, ...]:
        return ("missing",)


@dataclass(frozen=True, slots=True, eq=False)
class Call(Node):
    """``Name(arg, ...)``. ``name`` is the canonical spelling; ``written_name`` the one in the text."""

    name: str
    args: tuple[Node, ...] = ()
    written_name: str = field(default="", compare=False, repr=False)
    source: str = field(default="", compare=False, repr=False)

    def significant_args(self) -> tuple[Node, ...]:
        """The arguments without the empty slots at the end."""
        args = self.args
        n = len(args)
        while n and isinstance(args[n - 1], Missing):
            n -= 1
        return args[:n]

    def _key(self) -> tuple[object, ...]:
        return ("call", self.name, self.significant_args())


@dataclass(frozen=True, slots=True, eq=False)
class BinaryOp(Node):
    """``left op right`` for ``= <> < <= > >=`` and the concatenation ``&``.

    All operators have the same priority and group left to right, so ``right`` is never a BinaryOp.
    """

    op: str
    left: Node
    right: Node
    source: str = field(default="", compare=False, repr=False)

    def _key(self) -> tuple[object, ...]:
        return ("op", self.op, self.left, self.right)


def walk(node: Node) -> list[Node]:
    """Every node of the tree, parents before children, left to right."""
    out: list[Node] = []
    stack: list[Node] = [node]
    while stack:
        current = stack.pop()
        out.append(current)
        if isinstance(current, Call):
            stack.extend(reversed(current.args))
        elif isinstance(current, BinaryOp):
            stack.append(current.right)
            stack.append(current.left)
    return out
