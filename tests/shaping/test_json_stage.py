"""The JSON stage: snapshots as text grows, the final value, and what fails it."""

from __future__ import annotations

import pytest

from llmrouter_server.errors import JsonOutputInvalid
from llmrouter_server.shaping.json_stage import JsonStage
from llmrouter_server.shaping.stage import Piece, Pipeline
from llmrouter_server.shaping.stops import StopSequences

PRICES = (
    '{"type": "object", "required": ["items"], "properties": {"items": {"type": "array",'
    ' "items": {"type": "object", "properties": {"price": {"type": "number"}}}}}}'
)


def snapshots(stage: JsonStage, parts: list[str]) -> list[str | None]:
    return [out.snapshot for part in parts for out in stage.feed(Piece(part, 1))]


def test_snapshots_grow_with_strings_and_wait_for_numbers() -> None:
    stage = JsonStage()
    parts = ['{"na', 'me": "Ad', 'a", "age": 3', "6", ', "tags": [tr', "ue", "]}"]

    assert snapshots(stage, parts) == [
        "{}",
        '{"name":"Ad"}',
        '{"name":"Ada"}',  # "age": 3 may still become 36
        None,
        '{"name":"Ada","age":36,"tags":[]}',  # true is not complete yet
        '{"name":"Ada","age":36,"tags":[true]}',
        None,  # the closing brackets change nothing
    ]
    assert stage.flush() == [Piece(snapshot='{"name":"Ada","age":36,"tags":[true]}', complete=True)]
    assert stage.flush() == []


def test_text_and_tokens_pass_unchanged_and_nothing_is_held() -> None:
    stage = JsonStage()
    out = stage.feed(Piece(' [1, "a"', 2, (5, 6)))

    assert out == [Piece(' [1, "a"', 2, (5, 6), snapshot='[1,"a"]')]
    assert stage.held == ""
    assert not stage.done
    assert stage.feed(Piece("", 1)) == [Piece("", 1)]


def test_a_top_level_number_is_shown_only_at_the_end() -> None:
    stage = JsonStage()

    assert snapshots(stage, ["4", "2"]) == [None, None]
    assert stage.flush() == [Piece(snapshot="42", complete=True)]


def test_digits_inside_a_string_are_text() -> None:
    stage = JsonStage()

    assert snapshots(stage, ['["12', '3"]']) == ['["12"]', '["123"]']


def test_prose_around_the_value_fails_at_the_end_with_the_whole_text() -> None:
    stage = JsonStage()
    snapshots(stage, ['{"a": 1}', " Hope this helps!"])

    with pytest.raises(JsonOutputInvalid) as caught:
        stage.flush()

    error = caught.value
    assert error.text == '{"a": 1} Hope this helps!'
    assert error.rule == "json"
    assert error.path == ""
    assert error.message.startswith("output is not valid JSON: trailing characters")


def test_a_value_cut_short_fails() -> None:
    stage = JsonStage()
    snapshots(stage, ['{"a": [1, 2'])

    with pytest.raises(JsonOutputInvalid, match="output is not valid JSON: EOF"):
        stage.flush()


def test_a_schema_failure_names_the_path_and_the_rule() -> None:
    stage = JsonStage(PRICES)
    snapshots(stage, ['{"items": [{"price": 1}, {"price": 2}, {"price": "abc"}]}'])

    with pytest.raises(JsonOutputInvalid) as caught:
        stage.flush()

    error = caught.value
    assert error.message == (
        "output does not match the JSON schema: "
        "$.items[2].price: 'abc' is not of type 'number' (rule 'type')"
    )
    assert (error.path, error.rule, error.detail) == (
        "$.items[2].price",
        "type",
        "'abc' is not of type 'number'",
    )
    assert error.reason == "JSON_OUTPUT_INVALID"


def test_a_missing_required_property_fails_at_the_root() -> None:
    stage = JsonStage(PRICES)
    snapshots(stage, ["{}"])

    with pytest.raises(JsonOutputInvalid) as caught:
        stage.flush()

    assert (caught.value.path, caught.value.rule) == ("$", "required")
    assert caught.value.detail == "'items' is a required property"


def test_the_draft_the_schema_declares_is_used() -> None:
    # Draft 4 reads a boolean exclusiveMaximum; 2020-12 would reject this schema.
    schema = (
        '{"$schema": "http://json-schema.org/draft-04/schema#",'
        ' "type": "number", "maximum": 5, "exclusiveMaximum": true}'
    )
    stage = JsonStage(schema)
    snapshots(stage, ["5"])

    with pytest.raises(JsonOutputInvalid, match=r"\(rule 'maximum'\)"):
        stage.flush()


def test_after_the_stop_stage_a_stop_sequence_ends_the_value() -> None:
    pipeline = Pipeline([StopSequences(("\n\n",)), JsonStage()])
    out = pipeline.feed(Piece('{"a": "b"}\n')) + pipeline.feed(Piece("\nmore"))

    assert "".join(piece.text for piece in out) == '{"a": "b"}'
    assert pipeline.flush()[-1] == Piece(snapshot='{"a":"b"}', complete=True)
