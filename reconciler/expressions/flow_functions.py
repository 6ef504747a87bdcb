"""The expression functions that decide what flows: IIF, Switch, Coalesce, IgnoreFlowIfNullOrEmpty,
Error, SelectUniqueValue, DefaultDomain, and Replace (text, regular expression, and group from another
attribute). Each registers its builder with ``compiler``. Pure; no I/O.
"""

from __future__ import annotations

from typing import Any

from reconciler.expressions import netregex
from reconciler.expressions.compiler import _arg, _builder, _compile_attribute, _filled
from reconciler.expressions.nodes import Call, String
from reconciler.expressions.runtime import (
    MAX_TEXT,
    Compiled,
    Value,
    _bool,
    _bounded,
    _compile_regex,
    _Context,
    _Failure,
    _fast,
    _is_empty,
    _NoFlow,
    _Raised,
    _show_short,
    _text,
    _timed_out,
    _too_big,
)

# -- control flow -----------------------------------------------------------------------------------


@_builder("IIF")
def _build_iif(node: Call, args: list[Compiled | None]) -> Compiled:
    condition, if_true, if_false = _arg(args, 0), _arg(args, 1), _arg(args, 2)
    column = node.column

    def iif(ctx: _Context) -> Value:
        test = condition(ctx)
        if test is True or (test is not False and _bool(test, "IIF", column)):
            return if_true(ctx)
        return if_false(ctx)

    return iif


@_builder("Switch")
def _build_switch(node: Call, args: list[Compiled | None]) -> Compiled:
    source, default = _arg(args, 0), _arg(args, 1)
    pairs = [(_arg(args, i), _arg(args, i + 1)) for i in range(2, len(args) - 1, 2)]
    column = node.column

    def switch(ctx: _Context) -> Value:
        # An empty key ("" or an empty slot) matches a null or empty source.
        value = _text(source(ctx), "Switch", column) or ""
        for key, result in pairs:
            if (_text(key(ctx), "Switch", column) or "") == value:
                return result(ctx)
        return default(ctx)

    return switch


@_builder("Coalesce")
def _build_coalesce(node: Call, args: list[Compiled | None]) -> Compiled:
    fns = [a for a in args if a is not None]

    def coalesce(ctx: _Context) -> Value:
        for fn in fns:
            value = fn(ctx)
            if value is not None and not (type(value) is list and not value):
                return value
        return None

    return coalesce


@_builder("IgnoreFlowIfNullOrEmpty")
def _build_ignore_flow(node: Call, args: list[Compiled | None]) -> Compiled:
    inner = _arg(args, 0)

    def ignore_flow(ctx: _Context) -> Value:
        value = inner(ctx)
        if _is_empty(value):
            raise _NoFlow
        return value

    return ignore_flow


@_builder("Error")
def _build_error(node: Call, args: list[Compiled | None]) -> Compiled:
    message, column = _arg(args, 0), node.column

    def error(ctx: _Context) -> Value:
        raise _Raised(_text(message(ctx), "Error", column) or "Error() was called", column)

    return error


@_builder("SelectUniqueValue")
def _build_select_unique(node: Call, args: list[Compiled | None]) -> Compiled:
    rules = [a for a in args if a is not None]
    column = node.column

    def select_unique(ctx: _Context) -> Value:
        exists = ctx.context.get("exists")
        candidates: list[Value] = []
        for rule in rules:
            value = rule(ctx)
            if _is_empty(value):
                continue
            if not callable(exists):
                return value
            text = _text(value, "SelectUniqueValue", column)
            if not exists(text):
                return value
            candidates.append(text)
        if not callable(exists):
            return None
        raise _Failure(
            f"SelectUniqueValue: every candidate already exists ({', '.join(map(str, candidates))}); "
            "the service escrows the object",
            column,
        )

    return select_unique


@_builder("DefaultDomain")
def _build_default_domain(node: Call, args: list[Compiled | None]) -> Compiled:
    column = node.column

    def default_domain(ctx: _Context) -> Value:
        value = ctx.context.get("default_domain")
        if value is None:
            raise _Failure("DefaultDomain() has no value here; pass default_domain=...", column)
        return value

    return default_domain


@_builder("Replace")
def _build_replace(node: Call, args: list[Compiled | None]) -> Compiled:
    column = node.column
    source = _arg(args, 0)
    old, pattern_fn, group_fn = _arg(args, 1), _arg(args, 2), _arg(args, 3)
    replacement, template = _arg(args, 4), _arg(args, 6)
    has = [_filled(args, i) for i in range(7)]
    attr_fn = _arg(args, 5)
    attr_node = node.args[5] if len(node.args) > 5 else None
    if isinstance(attr_node, String):
        # replacementAttributeName names an attribute; a string gives the name, [attr] its value.
        attr_fn = _compile_attribute(attr_node.value)

    def text_of(fn: Compiled, ctx: _Context) -> str | None:
        return _text(fn(ctx), "Replace", column)

    def regex_of(ctx: _Context) -> tuple[str, netregex.Compiled]:
        """The regexPattern argument's text and its compiled form."""
        pattern = text_of(pattern_fn, ctx) or ""
        return pattern, _compile_regex(pattern, "Replace", column)

    if has[2]:
        if has[3] and has[5]:

            def regex_from_attribute(ctx: _Context) -> Value:
                # A source with a value is kept; one without takes the group from the other attribute.
                value = text_of(source, ctx)
                if value:
                    return value
                other = text_of(attr_fn, ctx)
                if not other:
                    return value
                pattern, rx = regex_of(ctx)
                key = _group_key(rx, text_of(group_fn, ctx) or "", column)
                fast = _fast(ctx, rx, other, column)
                found: Any
                try:
                    if fast is not None:
                        found = fast.search(other)
                    else:
                        found = rx.timed.search(other, timeout=ctx.time_left("Replace", column))
                except TimeoutError:
                    raise _timed_out("Replace", pattern, other, column) from None
                if found is None or found.group(key) is None:
                    return value
                return found.group(key)

            return regex_from_attribute
        if has[3] and has[4]:

            def regex_group(ctx: _Context) -> Value:
                value = text_of(source, ctx)
                if value is None:
                    return None
                pattern, rx = regex_of(ctx)
                key = _group_key(rx, text_of(group_fn, ctx) or "", column)
                substitute = text_of(replacement, ctx) or ""
                try:
                    result = _replace_group(ctx, rx, key, value, substitute, column)
                except TimeoutError:
                    raise _timed_out("Replace", pattern, value, column) from None
                return _bounded(ctx, result, "Replace", column)

            return regex_group
        if has[4]:

            def regex(ctx: _Context) -> Value:
                value = text_of(source, ctx)
                if value is None:
                    return None
                pattern, rx = regex_of(ctx)
                template = netregex.template(pattern, text_of(replacement, ctx) or "")
                n = len(value)
                try:
                    if n + (n + 1) * (template.literal + template.groups * n) <= MAX_TEXT:
                        # Even if every position matched, the result stays within the limit.
                        fast = _fast(ctx, rx, value, column)
                        if fast is not None:
                            result = fast.sub(template.text, value)
                        else:
                            timeout = ctx.time_left("Replace", column)
                            result = rx.timed.sub(template.text, value, timeout=timeout)
                    else:
                        result = _sub_counted(ctx, rx, template, value, column)
                except TimeoutError:
                    raise _timed_out("Replace", pattern, value, column) from None
                return _bounded(ctx, result, "Replace", column)

            return regex
    if has[1]:
        if has[4]:

            def plain(ctx: _Context) -> Value:
                value = text_of(source, ctx)
                find = text_of(old, ctx)
                if value is None or not find:
                    return value
                new = text_of(replacement, ctx) or ""
                return _bounded(ctx, _replace_text(value, find, new, column), "Replace", column)

            return plain
        if has[6]:

            def fill_template(ctx: _Context) -> Value:
                value = text_of(source, ctx)
                find = text_of(old, ctx)
                pattern_text = text_of(template, ctx)
                if value is None or pattern_text is None:
                    return None
                if not find:
                    return pattern_text
                return _bounded(ctx, _replace_text(pattern_text, find, value, column), "Replace", column)

            return fill_template
    # No replacement, template or replacement attribute: nothing to replace with.
    return lambda ctx: text_of(source, ctx)


def _replace_text(text: str, find: str, new: str, column: int) -> str:
    """``text`` with every ``find`` replaced by ``new``, refused before it is made if too large."""
    if len(new) > len(find):
        size = len(text) + text.count(find) * (len(new) - len(find))
        if size > MAX_TEXT:
            raise _too_big("Replace", size, column)
    return text.replace(find, new)


def _group_key(rx: netregex.Compiled, group: str, column: int) -> str | int:
    if group in rx.groupindex:
        return group
    if group.isdigit() and int(group) <= rx.groups:
        return int(group)
    raise _Failure(f"Replace: the regular expression has no group named {_show_short(group)}", column)


def _sub_counted(
    ctx: _Context, rx: netregex.Compiled, template: netregex.Template, value: str, column: int
) -> str:
    """``rx.sub`` for a replacement that could make a result over the limit: each match's text is
    bounded before it is made, and the substitution stops as soon as the result would be too large."""
    size = len(value)

    def expand(m: Any) -> str:
        nonlocal size
        longest = max(m.end(i) - m.start(i) for i in range(rx.groups + 1))
        if template.literal + template.groups * longest > MAX_TEXT:
            raise _too_big("Replace", size + template.literal + template.groups * longest, column)
        piece: str = m.expand(template.text)
        size += len(piece) - (m.end() - m.start())
        if size > MAX_TEXT:
            raise _too_big("Replace", size, column)
        return piece

    fast = _fast(ctx, rx, value, column)
    if fast is not None:
        return fast.sub(expand, value)
    return rx.timed.sub(expand, value, timeout=ctx.time_left("Replace", column))


def _replace_group(
    ctx: _Context, rx: netregex.Compiled, key: str | int, value: str, substitute: str, column: int
) -> str:
    """Every match's ``key`` group in ``value`` replaced by ``substitute``."""
    out: list[str] = []
    size = len(value)
    pos = 0
    fast = _fast(ctx, rx, value, column)
    if fast is not None:
        matches: Any = fast.finditer(value)
    else:
        matches = rx.timed.finditer(value, timeout=ctx.time_left("Replace", column))
    for m in matches:
        start, end = m.span(key)
        if start < 0 or (start == end and m.start() == m.end()):
            continue
        size += len(substitute) - (end - start)
        if size > MAX_TEXT:
            raise _too_big("Replace", size, column)
        out.append(value[pos:start])
        out.append(substitute)
        pos = end
    out.append(value[pos:])
    return "".join(out)
