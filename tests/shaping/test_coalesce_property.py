"""Property: however a text is split into deltas, coalescing keeps every character and token.

Each strategy is driven through a pipeline behind the stop stage, the way the
output builds it; TIME runs on a fake clock and ADAPTIVE on a scripted
``lagging``, with ticks between deltas as the output's timer would give them.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from llmrouter_server.shaping.coalesce import CoalesceMode, Coalescer, Coalescing
from llmrouter_server.shaping.stage import Piece, Pipeline
from llmrouter_server.shaping.stops import StopSequences


class FakeClock:
    """Seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@st.composite
def deltas(draw: st.DrawFn) -> tuple[str, list[Piece]]:
    """A text split at random places, each delta with 0 to 3 tokens and their ids."""
    text = draw(st.text("ab é\n🙂", max_size=60))
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=20)))
    bounds = [0, *cuts, len(text)]
    pieces = []
    next_id = itertools.count()
    for a, b in itertools.pairwise(bounds):
        tokens = draw(st.integers(0, 3))
        pieces.append(Piece(text[a:b], tokens, tuple(itertools.islice(next_id, tokens))))
    return text, pieces


def run(pipeline: Pipeline, pieces: list[Piece], steps: list[tuple[float, bool]]) -> list[Piece]:
    """Feeds the pieces; after each, maybe moves the clock and ticks (as the timer would)."""
    out: list[Piece] = []
    for piece, (advance, tick) in zip(pieces, itertools.cycle(steps or [(0.0, False)])):
        out += pipeline.feed(piece)
        CLOCK.now += advance
        if tick and pipeline.due_in() is not None:
            out += pipeline.tick()
    return out + pipeline.flush()


CLOCK = FakeClock()

steps = st.lists(st.tuples(st.floats(0.0, 0.3), st.booleans()), max_size=8)


def assert_kept(text: str, pieces: list[Piece], out: list[Piece]) -> None:
    assert "".join(piece.text for piece in out) == text
    assert sum(piece.token_count for piece in out) == sum(p.token_count for p in pieces)
    assert [i for piece in out for i in piece.token_ids] == [
        i for piece in pieces for i in piece.token_ids
    ]


@settings(max_examples=300, deadline=None)
@given(split=deltas(), max_chars=st.integers(1, 12))
def test_size_keeps_text_and_tokens_and_releases_at_max_chars(
    split: tuple[str, list[Piece]], max_chars: int
) -> None:
    text, pieces = split
    policy = Coalescing(CoalesceMode.SIZE, max_chars=max_chars)
    pipeline = Pipeline([StopSequences(()), Coalescer(policy)])

    out = run(pipeline, pieces, [])

    assert_kept(text, pieces, out)
    # Every chunk but the last has at least max_chars characters, and no piece was split.
    assert all(len(piece.text) >= max_chars for piece in out[:-1] if piece.text)
    assert len([p for p in out if p.text]) <= max(1, len([p for p in pieces if p.text]))


@settings(max_examples=300, deadline=None)
@given(split=deltas(), interval=st.floats(0.01, 0.5), schedule=steps)
def test_time_keeps_text_and_tokens_and_sends_the_first_text_at_once(
    split: tuple[str, list[Piece]], interval: float, schedule: list[tuple[float, bool]]
) -> None:
    text, pieces = split
    coalescer = Coalescer(Coalescing(CoalesceMode.TIME, interval=interval), clock=CLOCK)
    pipeline = Pipeline([StopSequences(()), coalescer])
    first = next((piece.text for piece in pieces if piece.text), "")

    out = run(pipeline, pieces, schedule)

    assert_kept(text, pieces, out)
    assert next((piece.text for piece in out if piece.text), "") == first


@settings(max_examples=300, deadline=None)
@given(split=deltas(), lags=st.lists(st.booleans(), min_size=1, max_size=8), schedule=steps)
def test_adaptive_keeps_text_and_tokens_whatever_the_caller_does(
    split: tuple[str, list[Piece]], lags: list[bool], schedule: list[tuple[float, bool]]
) -> None:
    text, pieces = split
    lagging = itertools.cycle(lags)
    pipeline = Pipeline(
        [StopSequences(()), Coalescer(Coalescing(CoalesceMode.ADAPTIVE), lambda: next(lagging))]
    )

    out = run(pipeline, pieces, schedule)

    assert_kept(text, pieces, out)


@settings(max_examples=200, deadline=None)
@given(split=deltas())
def test_adaptive_with_a_caller_that_keeps_up_is_one_piece_per_delta(
    split: tuple[str, list[Piece]],
) -> None:
    _, pieces = split
    pipeline = Pipeline([Coalescer(Coalescing(CoalesceMode.ADAPTIVE), lambda: False)])

    out = [out for piece in pieces for out in pipeline.feed(piece)]

    assert out == pieces
    assert pipeline.flush() == []
