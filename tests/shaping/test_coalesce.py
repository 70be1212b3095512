"""Coalescing by example: what each strategy passes on, and when."""

from __future__ import annotations

import pytest

from llmrouter_server.shaping.coalesce import (
    MAX_CHARS,
    POLL,
    CoalesceMode,
    Coalescer,
    Coalescing,
    coalescing,
)
from llmrouter_server.shaping.stage import Piece


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def texts(pieces: list[Piece]) -> list[str]:
    return [piece.text for piece in pieces]


def test_token_mode_builds_no_stage() -> None:
    assert coalescing(Coalescing(), lambda: False) == []


def test_size_passes_on_once_max_chars_are_pending_without_splitting() -> None:
    stage = Coalescer(Coalescing(CoalesceMode.SIZE, max_chars=5))

    out = [texts(stage.feed(Piece(text, 1))) for text in ["ab", "cd", "efgh", "i", "jklmnopq"]]

    assert out == [[], [], ["abcdefgh"], [], ["ijklmnopq"]]
    assert stage.held == ""
    assert stage.due_in() is None


def test_size_flush_sends_the_rest_with_summed_tokens_and_ids_in_order() -> None:
    stage = Coalescer(Coalescing(CoalesceMode.SIZE, max_chars=100))
    stage.feed(Piece("a", 1, (7,)))
    stage.feed(Piece("", 2, (8, 9)))
    stage.feed(Piece("b", 1, (10,)))

    assert stage.held == "ab"
    assert stage.flush() == [Piece("ab", 4, (7, 8, 9, 10))]
    assert stage.flush() == []


def test_merged_pieces_keep_the_newest_json_snapshot() -> None:
    stage = Coalescer(Coalescing(CoalesceMode.SIZE, max_chars=100))
    stage.feed(Piece('{"a"', 1, snapshot="{}"))
    stage.feed(Piece(": 1", 1, snapshot='{"a": 1}'))
    stage.feed(Piece("}", 1))

    assert stage.flush() == [Piece('{"a": 1}', 3, snapshot='{"a": 1}')]


def test_time_sends_the_first_text_at_once_then_once_per_interval() -> None:
    clock = FakeClock()
    stage = Coalescer(Coalescing(CoalesceMode.TIME, interval=0.1), clock=clock)

    assert texts(stage.feed(Piece("a", 1))) == ["a"]
    assert stage.feed(Piece("b", 1)) == []
    clock.now += 0.04
    assert stage.feed(Piece("c", 1)) == []
    assert stage.due_in() == pytest.approx(0.06)
    assert stage.tick() == []  # early: nothing yet
    clock.now += 0.06
    assert texts(stage.tick()) == ["bc"]
    assert stage.due_in() is None
    clock.now += 0.3  # a slow backend: the next text is already past the interval
    assert texts(stage.feed(Piece("d", 1))) == ["d"]


def test_adaptive_merges_while_the_caller_lags_and_sends_when_it_caught_up() -> None:
    lag = [False]
    stage = Coalescer(Coalescing(CoalesceMode.ADAPTIVE), lambda: lag[0])

    assert texts(stage.feed(Piece("a", 1))) == ["a"]
    lag[0] = True
    assert stage.feed(Piece("b", 1)) == []
    assert stage.feed(Piece("c", 1)) == []
    assert stage.due_in() == POLL
    assert stage.tick() == []
    lag[0] = False
    assert stage.tick() == [Piece("bc", 2)]
    assert stage.due_in() is None
    assert texts(stage.feed(Piece("d", 1))) == ["d"]


def test_adaptive_pending_text_is_bounded_even_if_the_caller_never_reads() -> None:
    stage = Coalescer(Coalescing(CoalesceMode.ADAPTIVE), lambda: True)
    chunk = "x" * 1024

    out = [piece for _ in range(MAX_CHARS // 1024) for piece in stage.feed(Piece(chunk, 1))]

    assert [len(piece.text) for piece in out] == [MAX_CHARS]
    assert stage.held == ""
