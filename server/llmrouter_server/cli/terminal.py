"""How ``llmrouter generate`` draws a stream: text on stdout, status and summary on stderr."""

from __future__ import annotations

import shutil
from typing import TextIO

from llmrouter.v1 import events_pb2 as ev_pb


class Terminal:
    """Streams text to stdout with a live status after it on a terminal.

    The status is drawn after the text with the cursor saved and restored, so
    the next text overwrites it; it is drawn only when it fits on the current
    line, so it never wraps or scrolls. Elsewhere only a summary goes to stderr.
    """

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self._out = out
        self._err = err
        self._live = out.isatty()
        self._width = shutil.get_terminal_size().columns
        self._column = 0

    def text(self, text: str) -> None:
        """Writes generated text, erasing the status drawn after the previous text."""
        self._out.write("\033[K" + text if self._live else text)
        tail = text.rsplit("\n", 1)
        self._column = len(tail[-1]) if len(tail) > 1 else self._column + len(text)
        self._column %= max(self._width, 1)
        self._out.flush()

    def progress(self, progress: ev_pb.Progress) -> None:
        """Shows the token count and rate as the status."""
        self.status(
            f"{progress.completion_tokens}/{progress.max_tokens} tokens, "
            f"{progress.tokens_per_second:.1f} tokens/s"
        )

    def status(self, status: str) -> None:
        """Draws a dim status after the text, on a terminal and when it fits."""
        if self._live and self._column + len(status) + 3 < self._width:
            self._out.write(f"\0337 \033[2m[{status}]\033[0m\0338")
            self._out.flush()

    def end_line(self) -> None:
        """Erases the status and ends a line of text left open, before an error is shown."""
        if self._live:
            self._out.write("\033[K")
        if self._column:
            self._out.write("\n")
            self._column = 0
        self._out.flush()

    def done(self, completed: ev_pb.Completed) -> None:
        """Ends the text and writes the one-line summary to stderr."""
        self.text("\n")
        reason = ev_pb.FinishReason.Name(completed.finish_reason).removeprefix("FINISH_REASON_")
        timings = completed.timings
        self._err.write(
            f"[{completed.usage.completion_tokens} tokens, "
            f"{timings.tokens_per_second:.1f} tokens/s, "
            f"first token {timings.time_to_first_token.ToMilliseconds()} ms, "
            f"{reason.lower()}, {completed.backend}/{completed.model}]\n"
        )
