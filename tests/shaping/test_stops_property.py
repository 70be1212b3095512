"""Property: however a text is split into deltas, the stop stage cuts it like a reference."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from llmrouter_server.shaping.stage import Piece, Pipeline
from llmrouter_server.shaping.stops import StopSequences

ALPHABET = "abS T\n"
"""Few letters, so stop sequences occur often and partial matches oftener."""


def reference(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    """Read one character at a time: cut before the first stop sequence to complete
    (the longest, if several complete at the same character)."""
    for end in range(1, len(text) + 1):
        completed = [stop for stop in stops if text[:end].endswith(stop)]
        if completed:
            return text[: end - max(map(len, completed))], True
    return text, False


@st.composite
def split_texts(draw: st.DrawFn) -> tuple[str, list[str]]:
    text = draw(st.text(ALPHABET, max_size=40))
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=12)))
    bounds = [0, *cuts, len(text)]
    return text, [text[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=400, deadline=None)
@given(
    split=split_texts(),
    stops=st.lists(st.text(ALPHABET, min_size=1, max_size=4), max_size=3).map(tuple),
)
def test_any_split_gives_the_reference_cut_and_keeps_every_token(
    split: tuple[str, list[str]], stops: tuple[str, ...]
) -> None:
    text, deltas = split
    pipeline = Pipeline([StopSequences(stops)])

    out = [piece for delta in deltas for piece in pipeline.feed(Piece(delta, 1))]
    if not pipeline.done:
        out += pipeline.flush()

    assert ("".join(piece.text for piece in out), pipeline.done) == reference(text, stops)
    assert sum(piece.token_count for piece in out) == len(deltas)
