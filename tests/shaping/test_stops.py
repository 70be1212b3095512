"""Stop sequences across arbitrary delta boundaries."""

from __future__ import annotations

import pytest

from llmrouter_server.shaping.stage import Piece, Pipeline
from llmrouter_server.shaping.stops import StopSequences


def _run(stops: tuple[str, ...], pieces: list[str]) -> tuple[str, bool]:
    stage = StopSequences(stops)
    out = "".join(p.text for piece in pieces for p in stage.feed(Piece(piece, 1)))
    if not stage.done:
        out += "".join(p.text for p in stage.flush())
    return out, stage.done


@pytest.mark.parametrize("split", range(1, 12))
def test_stop_split_anywhere_is_cut(split: int) -> None:
    text = "hello STOP world"
    assert _run(("STOP",), [text[:split], text[split:]]) == ("hello ", True)


def test_text_that_only_looks_like_a_stop_is_released() -> None:
    assert _run(("STOP",), ["a ST", "OP"[:1], "x"]) == ("a STOx", False)


def test_held_text_is_flushed_at_the_end() -> None:
    assert _run(("STOP",), ["tail ST"]) == ("tail ST", False)


def test_earliest_of_several_stops_wins() -> None:
    assert _run(("b", "a"), ["xxab"]) == ("xx", True)


def test_no_stops_passes_everything() -> None:
    assert _run((), ["a", "b"]) == ("ab", False)


def test_text_after_a_stop_is_dropped_and_its_tokens_still_counted() -> None:
    stage = StopSequences(("!",))
    assert stage.feed(Piece("hi!", 1)) == [Piece("hi", 1)]
    assert stage.feed(Piece("more", 1, (7,))) == [Piece("", 1, (7,))]


def test_held_text_is_reported_and_its_tokens_travel_with_the_next_piece() -> None:
    stage = StopSequences(("STOP",))
    assert stage.feed(Piece("one ST", 2)) == [Piece("one ", 2)]
    assert stage.held == "ST"
    assert stage.feed(Piece("ill", 1)) == [Piece("STill", 1)]
    assert stage.held == ""


def test_a_pipeline_flushes_each_stage_through_the_later_ones() -> None:
    pipeline = Pipeline([StopSequences(("ab",)), StopSequences(("xy",))])
    assert pipeline.feed(Piece("1 a", 1)) == [Piece("1 ", 1)]
    assert pipeline.feed(Piece("z x", 1)) == [Piece("az ", 1)]
    assert pipeline.held == "x"
    assert pipeline.flush() == [Piece("x")]
    assert not pipeline.done
