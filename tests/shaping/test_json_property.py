"""Property: however a JSON document is split, every snapshot is a view of the final value.

A snapshot ``s`` is a view of the final value ``f`` (``s ⊑ f``) when:

- both are objects: the keys of ``s`` are the first keys of ``f``, in order; the
  entries but the last are equal, and the last is a view of ``f``'s entry;
- both are arrays: ``s`` is no longer than ``f``; its items but the last are
  equal, and the last is a view of ``f``'s item at that index;
- both are strings: ``s`` is a prefix of ``f`` (a string still being written);
- otherwise (numbers, booleans, null): ``s == f``, so a number is never shown
  before it is complete.

And the snapshots come in order: each is a view of the next.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from llmrouter_server.shaping.json_stage import JsonStage, dump
from llmrouter_server.shaping.stage import Piece

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=16,
)


def is_view(snapshot: Any, final: Any) -> bool:
    """``snapshot ⊑ final`` as the module docstring defines it."""
    if isinstance(snapshot, dict) and isinstance(final, dict):
        keys, final_keys = list(snapshot), list(final)
        if keys != final_keys[: len(keys)]:
            return False
        return all(
            snapshot[k] == final[k] if i < len(keys) - 1 else is_view(snapshot[k], final[k])
            for i, k in enumerate(keys)
        )
    if isinstance(snapshot, list) and isinstance(final, list):
        if len(snapshot) > len(final):
            return False
        return all(
            item == final[i] if i < len(snapshot) - 1 else is_view(item, final[i])
            for i, item in enumerate(snapshot)
        )
    if isinstance(snapshot, str) and isinstance(final, str):
        return final.startswith(snapshot)
    return type(snapshot) is type(final) and snapshot == final


@st.composite
def split_documents(draw: st.DrawFn) -> tuple[Any, list[str]]:
    value = draw(DOCUMENTS)
    indent = draw(st.sampled_from([None, 1]))
    text = json.dumps(value, indent=indent, ensure_ascii=draw(st.booleans()))
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=20)))
    bounds = [0, *cuts, len(text)]
    return value, [text[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=400, deadline=None)
@given(split=split_documents())
def test_every_snapshot_is_a_view_of_the_final_value(split: tuple[Any, list[str]]) -> None:
    value, parts = split
    stage = JsonStage()
    pieces = [out for part in parts for out in stage.feed(Piece(part))]
    final = stage.flush()

    assert "".join(piece.text for piece in pieces) == "".join(parts)
    assert [piece.complete for piece in final] == [True]
    assert final[0].snapshot == dump(value)
    snapshots = [json.loads(p.snapshot) for p in pieces if p.snapshot is not None]
    assert len(snapshots) <= len(parts)
    for earlier, later in itertools.pairwise([*snapshots, value]):
        assert is_view(earlier, later), (earlier, later)
    texts = [p.snapshot for p in pieces if p.snapshot is not None]
    assert all(a != b for a, b in itertools.pairwise(texts)), "a snapshot repeats the last"
    # The last snapshot of all is the complete one, and it is the final value.
    assert json.loads(final[0].snapshot) == value
