"""The fast makers of Origin and MappingOverride give exactly what the constructors give."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.model import (
    Mapping,
    MappingKind,
    MappingOverride,
    Origin,
    make_origin,
    make_override,
)

_TEXT = st.text(max_size=12)


def test_the_made_classes_have_no_post_init_to_skip() -> None:
    for cls in (Origin, MappingOverride):
        assert not hasattr(cls, "__post_init__")
        assert [f.name for f in dataclasses.fields(cls)] == list(cls.__slots__)


@given(file=_TEXT, line=st.integers(1, 10**6), col=st.integers(1, 10**4))
def test_make_origin_is_the_constructor(file: str, line: int, col: int) -> None:
    made, built = make_origin(file, line, col), Origin(file, line, col)
    assert made == built and hash(made) == hash(built) and str(made) == str(built)
    assert repr(made) == repr(built)


@given(obj=_TEXT, target=_TEXT, value=st.one_of(st.none(), _TEXT), line=st.integers(1, 10**6))
def test_make_override_is_the_constructor(obj: str, target: str, value: str | None, line: int) -> None:
    mapping = None if value is None else Mapping(obj, target, MappingKind.CONSTANT, value)
    origin = Origin("a.yaml", line)
    made, built = make_override(obj, target, mapping, origin), MappingOverride(obj, target, mapping, origin)
    assert made == built and hash(made) == hash(built) and repr(made) == repr(built)
    assert made.origin is origin and made.remove == built.remove
