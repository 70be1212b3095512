"""The tally on a fake clock: progress, ETA, time to first token, chunk timing."""

from __future__ import annotations

from llmrouter_server.backends.base import Delta
from llmrouter_server.backends.scripted import ScriptedBackend
from llmrouter_server.routing.breaker import TargetHealth
from llmrouter_server.routing.items import AttemptStarted
from llmrouter_server.routing.route import Target
from llmrouter_server.routing.slots import Slots
from llmrouter_server.routing.transcript import Segment, Transcript
from llmrouter_server.streams.accounting import Accounting
from llmrouter_server.streams.events import Chunk, ChunkSource, ChunkTiming, Progress
from llmrouter_server.streams.request import StreamOptions

EPOCH = 1_790_000_000.0
"""The wall clock reads this plus the monotonic reading."""

BOTH = StreamOptions(include_progress=True, include_metadata=True)


class Clock:
    """A clock that reads what the test set."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Run:
    """One generation's tally and transcript, driven by hand."""

    def __init__(self, max_tokens: int = 10, options: StreamOptions = BOTH) -> None:
        self.clock = Clock(100.0)
        self.wall = Clock(EPOCH + 100.0)
        self.transcript = Transcript()
        self.tally = Accounting(
            max_tokens, options, self.transcript, clock=self.clock, wall_clock=self.wall
        )
        self.segment = self.attempt(1)

    def at(self, seconds: float) -> None:
        """Moves both clocks to ``seconds`` after the tally's start."""
        self.clock.now = 100.0 + seconds
        self.wall.now = EPOCH + 100.0 + seconds

    def attempt(self, number: int) -> Segment:
        backend = ScriptedBackend("fake", [])
        target = Target(backend, "m", Slots(1), TargetHealth("fake/m", 5, 30.0))
        self.tally.attempt(AttemptStarted(target, 0, number))
        return self.transcript.begin(Segment(number, 0, "m", "fake"))

    def emit(self, text: str, tokens: int = 1, source: ChunkSource | None = None) -> Chunk | None:
        """A delta the route passes on, counted as routing counts it."""
        delta = Delta(text=text, token_count=tokens)
        self.segment.add(delta)
        self.transcript.extend(delta)
        return self.tally.chunk(delta, source)


def test_first_chunk_has_time_to_first_token_but_no_rate_eta_or_previous() -> None:
    run = Run()
    run.at(1.0)

    chunk = run.emit("a")

    assert chunk is not None
    assert chunk.progress == Progress(
        completion_tokens=1,
        max_tokens=10,
        tokens_per_second=0.0,
        elapsed=1.0,
        fraction=0.1,
        eta=None,
        time_to_first_token=1.0,
    )
    assert chunk.source == ChunkSource("m", "fake", 1, 0)
    assert chunk.timing == ChunkTiming(produced_at=EPOCH + 101.0, since_previous=None)


def test_rate_gives_the_eta_to_max_tokens_and_chunks_their_spacing() -> None:
    run = Run()
    run.at(1.0)
    run.emit("a")
    run.at(1.5)
    second = run.emit("b")
    run.at(2.0)
    third = run.emit("cd", tokens=2)

    assert second is not None
    assert third is not None
    assert second.progress == Progress(
        2, 10, 2.0, 1.5, fraction=0.2, eta=4.0, time_to_first_token=1.0
    )
    assert third.progress == Progress(
        4, 10, 3.0, 2.0, fraction=0.4, eta=2.0, time_to_first_token=1.0
    )
    assert second.timing == ChunkTiming(produced_at=EPOCH + 101.5, since_previous=0.5)
    assert third.timing == ChunkTiming(produced_at=EPOCH + 102.0, since_previous=0.5)


def test_a_delta_without_text_moves_no_clock_and_its_token_joins_the_next_chunk() -> None:
    run = Run()
    run.at(1.0)
    run.emit("a")
    run.at(2.0)
    assert run.emit("", tokens=1) is None
    run.at(3.0)

    chunk = run.emit("b")

    assert chunk is not None
    assert chunk.token_count == 2
    assert chunk.progress == Progress(
        3, 10, 1.0, 3.0, fraction=0.3, eta=7.0, time_to_first_token=1.0
    )
    assert chunk.timing == ChunkTiming(produced_at=EPOCH + 103.0, since_previous=2.0)


def test_at_the_limit_the_eta_is_zero_and_the_fraction_stays_at_one() -> None:
    run = Run(max_tokens=2)
    run.at(0.5)
    run.emit("a")
    run.at(1.0)
    at_limit = run.emit("b")
    run.segment = run.attempt(2)  # a restart: the first attempt's tokens still count
    run.at(1.5)
    past_limit = run.emit("c")

    assert at_limit is not None
    assert past_limit is not None
    assert at_limit.progress == Progress(
        2, 2, 2.0, 1.0, fraction=1.0, eta=0.0, time_to_first_token=0.5
    )
    assert past_limit.progress == Progress(
        3, 2, 2.0, 1.5, fraction=1.0, eta=0.0, time_to_first_token=0.5
    )
    assert past_limit.source == ChunkSource("m", "fake", 2, 0)


def test_merged_chunks_are_spaced_across_targets() -> None:
    run = Run()
    run.at(1.0)
    run.emit("a", source=ChunkSource("m", "fake", 1, 0))
    run.at(1.25)

    chunk = run.emit("x", source=ChunkSource("n", "other", 2, 1))

    assert chunk is not None
    assert chunk.source == ChunkSource("n", "other", 2, 1)
    assert chunk.timing == ChunkTiming(produced_at=EPOCH + 101.25, since_previous=0.25)


def test_nothing_is_attached_unless_asked_and_each_option_attaches_its_own() -> None:
    plain, progress, metadata = (
        Run(options=StreamOptions()),
        Run(options=StreamOptions(include_progress=True)),
        Run(options=StreamOptions(include_metadata=True)),
    )
    chunks = []
    for run in (plain, progress, metadata):
        run.at(1.0)
        chunks.append(run.emit("a"))

    assert [
        (c.progress is not None, c.source is not None, c.timing is not None) for c in chunks if c
    ] == [
        (False, False, False),
        (True, False, False),
        (False, True, True),
    ]


def test_completion_timings_share_the_time_to_first_token() -> None:
    run = Run()
    run.at(0.25)
    run.emit("a")
    run.at(0.75)
    run.emit("b")
    run.at(1.0)

    timings = run.tally.completed().timings

    assert (timings.queue_time, timings.time_to_first_token, timings.total_time) == (0.0, 0.25, 1.0)
    assert timings.tokens_per_second == 2.0
