"""Parser and printer of attribute-mapping expressions (text <-> syntax tree). Pure; no I/O.

Grammar (synthesised from the Cloud Sync and app-provisioning references and their examples)::

    expression = operand { op operand }            op: = <> < <= > >= &   (equal priority, left to right)
    operand    = call | [attribute] | "string" | number | &Hhex | %Parameter% | enum-word
    call       = Name ( [slot] { , [slot] } )      an empty slot is a Missing node; Name() has no slots
    number     = [-] digits

Choices where the references leave room:

* Function names: the references spell names inconsistently (``Instr``, ``switch``, ``IsNullorEmpty``
  appear in official text), so names match ignoring case and the tree holds the canonical spelling; a
  different spelling is reported by ``expression_warnings``. ``strict=True`` makes it an error.
* Escapes: ``\\"`` and ``\\\\`` are the documented escapes. Official default mappings also write
  ``"\\,"`` and ``"\\2C"``, so any other backslash is kept as written (with a warning; an error when
  ``strict=True``). A string that runs to the end of the text is an error, pointing at an escaped quote
  when that is the reason.
* Bare words are enum values and are accepted only in enum parameters (InStr's compareType,
  ConvertFromBase64's encoding). Parentheses for grouping are not part of the language.
* Size: the text may be ``MAX_LENGTH`` characters long, the same bound the evaluator puts on values.
* Static checks: a literal FormatDateTime format that .NET would refuse is an error here (see
  ``dates.check_format``), so that ``validate`` stops it before it reaches a tenant.
* Depth: calls and operators together may nest ``MAX_DEPTH`` levels. Each operator in a chain is one
  level (``[a] & [b] & [c]`` is a tree two deep); deeper trees are refused here rather than left to
  overflow the stack of whatever walks them later (evaluation, the service tree, printing).
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass

from reconciler.errors import ExpressionError
from reconciler.expressions import dates
from reconciler.expressions.functions import (
    ENUM,
    ENUM_VALUES,
    FunctionSpec,
    function_names,
    lookup_function,
)
from reconciler.expressions.nodes import (
    Attribute,
    BinaryOp,
    Call,
    Identifier,
    Missing,
    Node,
    Number,
    Parameter,
    String,
    walk,
)

__all__ = [
    "ExpressionWarning",
    "as_tree",
    "expression_warnings",
    "parse",
    "quote",
    "referenced_attributes",
    "unparse",
    "unquote",
]

_WS = " \t\r\n"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"-?[0-9]+")
_HEX = re.compile(r"&[Hh][0-9A-Fa-f]+")
_PARAMETER = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)%")
_WORD_CHAR = re.compile(r"[A-Za-z0-9_.]")
_WORD_RUN = re.compile(r"[-&]?[A-Za-z0-9_.]+")

# Names people reach for from other languages, mapped to the function that does the job.
_ALIASES = {
    "concat": "Join",
    "concatenate": "Join",
    "substring": "Mid",
    "substr": "Mid",
    "lcase": "ToLower",
    "lower": "ToLower",
    "tolowercase": "ToLower",
    "ucase": "ToUpper",
    "upper": "ToUpper",
    "touppercase": "ToUpper",
    "if": "IIF",
    "iif": "IIF",
    "isempty": "IsNullOrEmpty",
    "isnothing": "IsNull",
    "nz": "Coalesce",
    "ifnull": "Coalesce",
    "guidnew": "Guid",
    "newguid": "Guid",
    "strip": "Trim",
    "right": "Mid",
    "index": "InStr",
    "indexof": "InStr",
    "prepend": "Append",
}


@dataclass(frozen=True, slots=True)
class ExpressionWarning:
    """Something that parses but is probably not what the author meant."""

    message: str
    column: int

    def __str__(self) -> str:
        return f"column {self.column}: {self.message}"


def _describe(ch: str) -> str:
    if ch == "\n":
        return "a line break"
    return f"'{ch}'"


def suggest_function(name: str) -> str | None:
    """The known function ``name`` most likely stands for, or None."""
    folded = name.casefold()
    if folded in _ALIASES:
        return _ALIASES[folded]
    names = sorted(function_names())
    by_folded = {n.casefold(): n for n in names}
    close = difflib.get_close_matches(folded, list(by_folded), n=1, cutoff=0.6)
    return by_folded[close[0]] if close else None


# Far deeper than any real mapping; shallow enough for every recursive walk of the tree.
MAX_DEPTH = 100
# Characters in one expression: far longer than any real mapping, and the evaluator's value bound.
MAX_LENGTH = 1 << 20

# Said after an arity error, where an official example calls the function another way.
_ARITY_HINTS = {
    "Mid": (
        "the Cloud Sync reference's Item example writes Mid with two arguments, but Mid's own entry "
        "(Cloud Sync and app provisioning alike) requires length; for the rest of the text give a "
        "length that runs past its end, e.g. Mid(source, 6, 1024)"
    ),
}


class _Parser:
    def __init__(self, text: str, strict: bool) -> None:
        self.text = text
        self.n = len(text)
        self.pos = 0
        self.depth = 0  # calls open around the current position
        self.strict = strict
        self.warnings: list[ExpressionWarning] = []

    # -- helpers ------------------------------------------------------------------------------
    def error(self, message: str, pos: int) -> ExpressionError:
        return ExpressionError(message, min(pos, self.n) + 1, self.text)

    def warn(self, message: str, pos: int) -> None:
        if self.strict:
            raise self.error(message, pos)
        self.warnings.append(ExpressionWarning(message, pos + 1))

    def skip_ws(self) -> None:
        text, n, pos = self.text, self.n, self.pos
        while pos < n and text[pos] in _WS:
            pos += 1
        self.pos = pos

    # -- grammar ------------------------------------------------------------------------------
    def parse(self) -> Node:
        if self.n > MAX_LENGTH:
            raise self.error(f"expression is {self.n:,} characters long; the limit is {MAX_LENGTH:,}", 0)
        self.skip_ws()
        if self.pos >= self.n:
            raise self.error("empty expression", 0)
        node = self.expression(enum_ok=False)
        self.skip_ws()
        if self.pos < self.n:
            raise self.trailing()
        for inner in walk(node)[1:]:
            if isinstance(inner, Call) and inner.name == "SelectUniqueValue":
                raise self.error(
                    "SelectUniqueValue must be the outermost function; it cannot be nested", inner.start
                )
        return node

    def trailing(self) -> ExpressionError:
        ch = self.text[self.pos]
        if ch == ")":
            return self.error("unexpected ')' with no matching '('", self.pos)
        if ch == "]":
            return self.error("unexpected ']' with no matching '['", self.pos)
        if ch == ",":
            return self.error("unexpected ',' outside a function's argument list", self.pos)
        return self.error(
            f"unexpected {_describe(ch)} after the end of the expression (missing ',' or operator?)",
            self.pos,
        )

    def match_operator(self) -> str | None:
        text, pos = self.text, self.pos
        two = text[pos : pos + 2]
        if two in ("<>", "<=", ">="):
            return two
        if two == "==":
            raise self.error("'==' is not an operator; compare with '='", pos)
        if two == "!=":
            raise self.error("'!=' is not an operator; use '<>' for not equal", pos)
        ch = text[pos : pos + 1]
        if ch in ("=", "<", ">", "&"):
            return ch
        if ch in ("+", "*", "/") or (ch == "-" and pos + 1 < self.n):
            raise self.error(
                f"'{ch}' is not an operator; the operators are = <> < <= > >= and & (concatenation)", pos
            )
        return None

    def too_deep(self, pos: int) -> ExpressionError:
        return self.error(f"expression is nested too deeply (more than {MAX_DEPTH} calls and operators)", pos)

    def expression(self, enum_ok: bool) -> Node:
        left = self.operand(enum_ok)
        links = 0
        while True:
            save = self.pos
            self.skip_ws()
            if self.pos >= self.n:
                self.pos = save
                return left
            word = _NAME.match(self.text, self.pos)
            if word and word.group().upper() in ("AND", "OR"):
                raise self.error(
                    f"{word.group().upper()} is not supported; nest IIF calls to combine conditions",
                    self.pos,
                )
            op_pos = self.pos
            op = self.match_operator()
            if op is None:
                self.pos = save
                return left
            if isinstance(left, Identifier):
                raise self.bare_word(left.name, left.start)
            links += 1
            if self.depth + links > MAX_DEPTH:
                raise self.too_deep(op_pos)
            self.pos += len(op)
            self.skip_ws()
            if self.pos >= self.n or self.text[self.pos] in ",)":
                raise self.error(f"missing value after '{op}'", op_pos)
            right = self.operand(enum_ok=False)
            left = BinaryOp(
                op,
                left,
                right,
                source=self.text[left.start : right.end],
                start=left.start,
                end=right.end,
            )

    def operand(self, enum_ok: bool) -> Node:
        text, pos = self.text, self.pos
        ch = text[pos]
        if ch == "[":
            return self.attribute()
        if ch == '"':
            return self.string()
        if ch == "%":
            m = _PARAMETER.match(text, pos)
            if m is None:
                raise self.error("unclosed '%': write a parameter as %Name%", pos)
            self.pos = m.end()
            return Parameter(m.group(1), start=pos, end=m.end())
        if ch == "&":
            m = _HEX.match(text, pos)
            if m is None:
                raise self.error("'&' needs a value on its left (hexadecimal numbers are written &HFF)", pos)
            return self.number_end(m.group(), pos, m.end())
        if ch in "0123456789" or (ch == "-" and text[pos + 1 : pos + 2].isdigit()):
            m = _NUMBER.match(text, pos)
            if m is None:
                raise self.error("malformed number", pos)
            return self.number_end(m.group(), pos, m.end())
        m = _NAME.match(text, pos)
        if m is not None:
            return self.name(m.group(), pos, m.end(), enum_ok)
        if ch == "(":
            raise self.error("'(' must follow a function name; parentheses do not group", pos)
        if ch == ")":
            raise self.error("unexpected ')' with no matching '('", pos)
        if ch == "]":
            raise self.error("unexpected ']' with no matching '['", pos)
        if ch in "=<>":
            raise self.error(f"missing value before '{ch}'", pos)
        if ch == "'":
            raise self.error('strings are written in double quotes: "text"', pos)
        raise self.error(f"unexpected {_describe(ch)}", pos)

    def number_end(self, literal: str, start: int, end: int) -> Number:
        if end < self.n and _WORD_CHAR.match(self.text, end):
            bad = _WORD_RUN.match(self.text, start)
            shown = bad.group() if bad else literal
            raise self.error(f"malformed number '{shown}': only whole numbers are allowed", start)
        self.pos = end
        return Number(literal, start=start, end=end)

    def attribute(self) -> Attribute:
        text, start = self.text, self.pos
        j = start + 1
        while j < self.n and text[j] not in "]\n[":
            j += 1
        if j >= self.n or text[j] != "]":
            raise self.error("unclosed '[': an attribute reference needs a closing ']'", start)
        name = text[start + 1 : j]
        if not name.strip():
            raise self.error("empty attribute name '[]'", start)
        if name != name.strip():
            self.warn(f"attribute name '{name}' has leading or trailing spaces", start)
        self.pos = j + 1
        return Attribute(name, start=start, end=j + 1)

    def string(self) -> String:
        text, n, start = self.text, self.n, self.pos
        j = start + 1
        parts: list[str] = []
        escaped_quote = -1
        while j < n:
            ch = text[j]
            if ch == '"':
                self.pos = j + 1
                return String("".join(parts), start=start, end=j + 1)
            if ch == "\\":
                nxt = text[j + 1 : j + 2]
                if not nxt:
                    raise self.error("backslash at the end of the expression: the string is not closed", j)
                if nxt in '"\\':
                    if nxt == '"':
                        escaped_quote = j
                    parts.append(nxt)
                    j += 2
                    continue
                self.warn(
                    f"unknown escape '\\{nxt}' is kept as written; only \\\" and \\\\ are escapes "
                    f"(write \\\\{nxt} for a backslash followed by '{nxt}')",
                    j,
                )
                parts.append("\\")
                j += 1
                continue
            parts.append(ch)
            j += 1
        if escaped_quote >= 0:
            raise self.error(
                'unterminated string: this \\" is an escaped quote, not the end of the string '
                "(write \\\\ to end a string with a backslash)",
                escaped_quote,
            )
        raise self.error("unterminated string: missing closing '\"'", start)

    def bare_word(self, word: str, pos: int) -> ExpressionError:
        upper = word.upper()
        if upper in ("AND", "OR"):
            return self.error(f"{upper} is not supported; nest IIF calls to combine conditions", pos)
        if lookup_function(word) is not None:
            return self.error(f"'{word}' is a function; call it as {word}(...)", pos)
        if upper in ("TRUE", "FALSE"):
            return self.error(f"bare word '{word}': booleans are written as strings, \"{word}\"", pos)
        return self.error(
            f"unexpected bare word '{word}': write \"{word}\" for text or [{word}] for an attribute", pos
        )

    def name(self, word: str, start: int, end: int, enum_ok: bool) -> Node:
        self.pos = end
        self.skip_ws()
        if self.pos < self.n and self.text[self.pos] == "(":
            return self.call(word, start)
        self.pos = end
        if not enum_ok:
            raise self.bare_word(word, start)
        return Identifier(word, start=start, end=end)

    def call(self, written: str, start: int) -> Call:
        spec = lookup_function(written)
        if spec is None:
            hint = suggest_function(written)
            message = f"unknown function '{written}'"
            if hint:
                message += f"; did you mean '{hint}'?"
            raise self.error(message, start)
        if spec.name != written:
            self.warn(f"function '{written}' is spelled '{spec.name}' in the reference", start)
        open_pos = self.pos
        self.pos += 1
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.too_deep(start)
        try:
            args = self.arguments(spec, open_pos)
        finally:
            self.depth -= 1
        node = Call(
            spec.name,
            tuple(args),
            written_name=written,
            source=self.text[start : self.pos],
            start=start,
            end=self.pos,
        )
        self.check_call(spec, node)
        return node

    def arguments(self, spec: FunctionSpec, open_pos: int) -> list[Node]:
        text = self.text
        args: list[Node] = []
        self.skip_ws()
        if self.pos < self.n and text[self.pos] == ")":
            self.pos += 1
            return args
        while True:
            self.skip_ws()
            if self.pos >= self.n:
                raise self.unclosed(spec, open_pos)
            ch = text[self.pos]
            if ch in ",)":
                args.append(Missing(start=self.pos, end=self.pos))
            else:
                param = spec.param_for_slot(len(args), -1) if spec.params else None
                args.append(self.expression(enum_ok=param is not None and param.kind == ENUM))
                self.skip_ws()
                if self.pos >= self.n:
                    raise self.unclosed(spec, open_pos)
                ch = text[self.pos]
            if ch == ",":
                self.pos += 1
                continue
            if ch == ")":
                self.pos += 1
                return args
            if ch == "]":
                raise self.error("unexpected ']' with no matching '['", self.pos)
            raise self.error(
                f"expected ',' or ')' after argument {len(args)} of {spec.name}, found {_describe(ch)}",
                self.pos,
            )

    def check_date_formats(self, node: Call) -> None:
        # Formats written as text are checked now; computed ones when the expression is evaluated.
        first = 2 if len(node.args) == 4 else 1
        for offset, reading in ((0, True), (1, False)):
            arg = node.args[first + offset] if first + offset < len(node.args) else Missing()
            if not reading and (isinstance(arg, Missing) or (isinstance(arg, String) and not arg.value)):
                raise self.error("FormatDateTime: outputFormat is empty", node.start)
            if not isinstance(arg, String) or (reading and not arg.value):
                continue  # an empty inputFormat is right when the source is a DateTime
            try:
                dates.check_format(arg.value, reading=reading)
            except dates.DateError as exc:
                name = "inputFormat" if reading else "outputFormat"
                raise self.error(f"FormatDateTime {name}: {exc}", arg.start) from None

    def unclosed(self, spec: FunctionSpec, open_pos: int) -> ExpressionError:
        return self.error(f"missing ')' to close '{spec.name}(' opened here", open_pos)

    def check_call(self, spec: FunctionSpec, node: Call) -> None:
        nargs = len(node.args)
        if (
            nargs < spec.min_args
            or (spec.max_args is not None and nargs > spec.max_args)
            or (spec.even and nargs % 2)
        ):
            advice = _ARITY_HINTS.get(spec.name, "")
            raise self.error(
                f"{spec.name} takes {spec.arity_text()}: {spec.signature()}; got {nargs}"
                + (f" ({advice})" if advice else ""),
                node.start,
            )
        if spec.name == "FormatDateTime":
            self.check_date_formats(node)
        for index, arg in enumerate(node.args):
            if not isinstance(arg, Identifier):
                continue
            param = spec.param_for_slot(index, nargs)
            allowed = ENUM_VALUES.get(param.name, ())
            if arg.name in allowed:
                continue
            close = difflib.get_close_matches(arg.name, allowed, n=1, cutoff=0.5)
            folded = [a for a in allowed if a.casefold() == arg.name.casefold()]
            hint = folded[0] if folded else (close[0] if close else None)
            message = f"'{arg.name}' is not a {param.name} value of {spec.name}"
            if hint:
                message += f"; did you mean '{hint}'?"
            else:
                message += f"; use one of {', '.join(allowed)}"
            raise self.error(message, arg.start)


@functools.lru_cache(maxsize=8192)
def _parse_cached(text: str, strict: bool) -> tuple[Node, tuple[ExpressionWarning, ...]]:
    parser = _Parser(text, strict)
    try:
        node = parser.parse()
    except RecursionError:
        raise ExpressionError("expression is nested too deeply", 1, text) from None
    return node, tuple(parser.warnings)


def parse(text: str, *, strict: bool = False) -> Node:
    """Parse an expression into its syntax tree; raises ExpressionError (message, 1-based column).

    Results are cached per text, so parsing the same mapping again is a dictionary lookup.
    """
    if not isinstance(text, str):
        raise TypeError(f"expression must be a string, not {type(text).__name__}")
    return _parse_cached(text, strict)[0]


def expression_warnings(text: str) -> tuple[ExpressionWarning, ...]:
    """Warnings for text that parses only leniently (function-name casing, unknown escapes, ...)."""
    return _parse_cached(text, False)[1]


def as_tree(expression: str | Node) -> Node:
    """The tree of ``expression``, parsing it when it is text."""
    if isinstance(expression, Node):
        return expression
    return parse(expression)


def quote(value: str) -> str:
    """``value`` as a string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# The two documented escapes; any other backslash is the text's own, as ``_Parser.string`` reads it.
_ESCAPE = re.compile(r'\\(["\\])')


def unquote(text: str) -> str:
    """The value of string literal ``text`` (its quotes optional), read as ``parse`` reads one: ``\\"``
    and ``\\\\`` are escapes, and any other backslash is kept as written, a trailing one too. For text
    from the service, where keeping a backslash can only keep what it holds and dropping one would
    change the value written back. ``unquote(quote(v)) == v`` for every ``v``."""
    inner = text.strip()
    if len(inner) >= 2 and inner[0] == inner[-1] == '"':
        inner = inner[1:-1]
    return _ESCAPE.sub(r"\1", inner)


def unparse(node: Node) -> str:
    """Canonical text of a tree: ``Name(a, b, , d)``, ``[attr]``, ``"text"``, operators spaced."""
    if isinstance(node, Attribute):
        return f"[{node.name}]"
    if isinstance(node, String):
        return quote(node.value)
    if isinstance(node, Number):
        return node.literal
    if isinstance(node, Identifier):
        return node.name
    if isinstance(node, Parameter):
        return f"%{node.name}%"
    if isinstance(node, Missing):
        return ""
    if isinstance(node, Call):
        return f"{node.name}({', '.join(unparse(a) for a in node.args)})"
    if isinstance(node, BinaryOp):
        if isinstance(node.right, BinaryOp):
            raise ExpressionError(
                "operators group left to right; the right operand of an operator cannot be another operation",
                node.column,
            )
        return f"{unparse(node.left)} {node.op} {unparse(node.right)}"
    raise TypeError(f"not an expression node: {node!r}")


def referenced_attributes(expression: str | Node) -> set[str]:
    """Names of the source attributes an expression reads, as written.

    Includes a Replace replacementAttributeName given as a string, since it names an attribute.
    """
    tree = as_tree(expression)
    names: set[str] = set()
    for node in walk(tree):
        if isinstance(node, Attribute):
            names.add(node.name)
        elif isinstance(node, Call) and node.name == "Replace" and len(node.args) >= 6:
            slot = node.args[5]
            if isinstance(slot, String) and slot.value:
                names.add(slot.value)
    return names
