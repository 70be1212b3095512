"""The README's console recipes, and the shape of what they print.

A recipe is a ``$ command`` line in a ```` ```console ```` block (``\\`` continues
it on the next line), the one-line JSON requests typed after a ``-d @`` command,
and the output shown up to the next ``$`` line. In the output, a line starting
with ``…`` stands for any number of lines (or messages) left out, and a last line
``^C`` means the command is interrupted once it has printed what comes before.
A block right after ``<!-- not run by tests/e2e/test_readme.py: REASON -->`` is
not run.

Shapes leave out what changes from run to run: grpcurl's JSON is compared by
each message's field paths and enum values (not text, times, ids or numbers),
its text output line by line, its errors by code, message and detail types.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

FIRST_HEADING = "## Try it"
LAST_HEADING = "## Flow control, pause and replay"
ELLIPSIS = "…"
INTERRUPT = "^C"
SKIP_MARKER = re.compile(r"<!-- not run by tests/e2e/test_readme\.py: (?P<reason>\S.*?) -->")
ENUM = re.compile(r"[A-Z][A-Z0-9_]+")

T = TypeVar("T")


@dataclass(frozen=True)
class Recipe:
    """One command of a console block, with what it reads and prints."""

    line: int
    """The README line number of the ``$`` line."""
    command: str
    """The command, continuation lines joined."""
    stdin: tuple[str, ...]
    """Requests typed after a ``-d @`` command, one JSON message a line."""
    output: tuple[str, ...]
    """The output shown, ``^C`` excluded."""
    interrupted: bool
    """The output ends with ``^C``: the command is stopped with SIGINT."""

    def __str__(self) -> str:
        return f"README line {self.line}: $ {self.command}"


@dataclass(frozen=True)
class Block:
    """A console block and its recipes; ``skipped`` holds the reason when not run."""

    line: int
    recipes: tuple[Recipe, ...]
    skipped: str | None


def section(readme: str) -> tuple[int, list[str]]:
    """The first line number and the lines from "Try it" to the end of "Flow control"."""
    lines = readme.splitlines()
    first = lines.index(FIRST_HEADING)
    last = lines.index(LAST_HEADING)
    end = next((i for i in range(last + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return first + 1, lines[first:end]


def fenced(readme: str, language: str) -> list[tuple[int, list[str], str]]:
    """Each ```` ```language ```` block in the section: its first line number, its lines,
    and the line before its fence."""
    start, lines = section(readme)
    blocks, index = [], 0
    while index < len(lines):
        if lines[index] == f"```{language}":
            end = lines.index("```", index + 1)
            before = next((line for line in reversed(lines[:index]) if line.strip()), "")
            blocks.append((start + index + 1, lines[index + 1 : end], before))
            index = end
        index += 1
    return blocks


def console_blocks(readme: str) -> list[Block]:
    """Every console block of the section, parsed; fails on output without a command."""
    blocks = []
    for line, lines, before in fenced(readme, "console"):
        marker = SKIP_MARKER.fullmatch(before.strip())
        recipes = tuple(_recipes(line, lines))
        assert recipes, f"README line {line}: a console block without a command"
        blocks.append(Block(line, recipes, marker["reason"] if marker else None))
    return blocks


def _recipes(first: int, lines: list[str]) -> list[Recipe]:
    recipes, index = [], 0
    while index < len(lines):
        assert lines[index].startswith("$ ") or not lines[index].strip(), (
            f"README line {first + index}: output before any command: {lines[index]!r}"
        )
        if not lines[index].startswith("$ "):
            index += 1
            continue
        line, parts = first + index, [lines[index][2:]]
        while parts[-1].endswith("\\"):
            index += 1
            parts[-1] = parts[-1][:-1].rstrip()
            parts.append(lines[index].strip())
        command, index = " ".join(parts), index + 1
        stdin = []
        while " -d @ " in command and index < len(lines) and _one_line_json(lines[index]):
            stdin.append(lines[index])
            index += 1
        output = []
        while index < len(lines) and not lines[index].startswith("$ "):
            output.append(lines[index])
            index += 1
        while output and not output[-1].strip():
            output.pop()
        interrupted = bool(output) and output[-1] == INTERRUPT
        shown = tuple(output[:-1] if interrupted else output)
        recipes.append(Recipe(line, command, tuple(stdin), shown, interrupted))
    return recipes


def _one_line_json(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def is_ellipsis(line: str) -> bool:
    """Whether an output line stands for output left out."""
    return line.lstrip().startswith(ELLIPSIS)


def json_messages(text: str) -> list[Any]:
    """The JSON values printed one after another; fails on anything else."""
    decoder, messages, index = json.JSONDecoder(), [], 0
    text = text.strip()
    while index < len(text):
        message, index = decoder.raw_decode(text, index)
        messages.append(message)
        while index < len(text) and text[index].isspace():
            index += 1
    return messages


def complete_messages(text: str) -> int:
    """How many whole JSON values a partial output holds so far."""
    decoder, count, index = json.JSONDecoder(), 0, 0
    text = text.strip()
    while index < len(text):
        try:
            _, index = decoder.raw_decode(text, index)
        except ValueError:
            break
        count += 1
        while index < len(text) and text[index].isspace():
            index += 1
    return count


def expected_messages(output: Sequence[str]) -> list[Any | None]:
    """The shown JSON messages, with ``None`` for each ``…`` line."""
    pattern: list[Any | None] = []
    segment: list[str] = []
    for line in [*output, ELLIPSIS]:
        if is_ellipsis(line):
            pattern.extend(json_messages("\n".join(segment)))
            segment = []
            pattern.append(None)
        else:
            segment.append(line)
    return pattern[:-1]


def shape(value: Any, path: str = "") -> frozenset[str]:
    """The field paths of a JSON value (list items share ``[]``), with enum values."""
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else key
            paths.add(inner)
            paths |= shape(item, inner)
            if isinstance(item, str) and (key == "@type" or _enum(key, item)):
                paths.add(f"{inner}={item}")
    elif isinstance(value, list):
        for item in value:
            paths |= shape(item, f"{path}[]")
    return frozenset(paths)


def _enum(key: str, value: str) -> bool:
    return key != "text" and ENUM.fullmatch(value) is not None


def kind(message: Any) -> str:
    """What a message is, for messages: ``started``, ``status``, ``added``..."""
    if not isinstance(message, dict):
        return type(message).__name__
    inner = message.get("event", message)
    names = [key for key in inner if key not in ("streamId", "offset", "time", "requestId")]
    return ",".join(names)


def glob(pattern: Sequence[T | None], items: Sequence[T], same: Callable[[T, T], bool]) -> bool:
    """Whether items match the pattern, ``None`` matching any run of items (even none)."""
    matched = [True] + [False] * len(items)  # pattern so far against each prefix of items
    for wanted in pattern:
        if wanted is None:
            matched = [any(matched[: end + 1]) for end in range(len(items) + 1)]
        else:
            matched = [False] + [
                matched[end] and same(wanted, items[end]) for end in range(len(items))
            ]
    return matched[-1]


def summary_pattern(line: str) -> re.Pattern[str]:
    """The CLI's summary line with its counts, rates and times left open."""
    parts = re.split(r"(?<![\w.-])\d+(?:\.\d+)?(?![\w.-])", line)
    return re.compile(r"\d+(?:\.\d+)?".join(re.escape(part) for part in parts))


def grpcurl_error(text: str) -> tuple[str, str, list[str]]:
    """grpcurl's ``ERROR:`` report: the code, the message and the types of the details."""
    code = re.search(r"^\s*Code: (.*)$", text, re.MULTILINE)
    message = re.search(r"^\s*Message: (.*)$", text, re.MULTILINE)
    return (
        code[1] if code else "",
        message[1] if message else "",
        re.findall(r'"@type": "([^"]+)"', text),
    )
