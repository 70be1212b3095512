"""Stop sequences across arbitrary delta boundaries."""

from __future__ import annotations

import pytest

from llmrouter_server.streams.stops import StopMatcher


def _run(stops: tuple[str, ...], pieces: list[str]) -> tuple[str, bool]:
    matcher = StopMatcher(stops)
    out = "".join(matcher.feed(piece) for piece in pieces)
    if not matcher.stopped:
        out += matcher.flush()
    return out, matcher.stopped


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


def test_text_after_a_stop_is_dropped() -> None:
    matcher = StopMatcher(("!",))
    assert matcher.feed("hi!") == "hi"
    assert matcher.feed("more") == ""
