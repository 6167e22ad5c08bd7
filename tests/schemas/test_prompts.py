"""The `prompts` form field: every malformed prompt is refused, naming the prompt."""

import json

import pytest

from app.core.errors import InvalidRequest
from app.schemas import JobRequest
from app.schemas.prompts import Prompt, parse_prompts, prompts_from_marks

SIZE = (200, 100)  # width, height


def refusal(raw: str, max_objects: int = 5) -> dict:
    with pytest.raises(InvalidRequest) as caught:
        parse_prompts(raw, SIZE, max_objects)
    (error,) = caught.value.details["errors"]
    assert error["field"] == "prompts" and caught.value.status == 422
    return error


def test_valid_prompts_parse_with_labels_defaulting_to_one():
    prompts = parse_prompts('[{"points": [[10, 20], [30, 40]]}, {"box": [0, 0, 200, 100]}]',
                            SIZE, 5)
    assert prompts[0].labels == [1, 1] and prompts[1].box == (0, 0, 200, 100)


def test_absent_or_blank_field_means_no_prompts():
    assert parse_prompts(None, SIZE, 5) is None and parse_prompts("  ", SIZE, 5) is None


@pytest.mark.parametrize("raw, index, words", [
    ('[{"points": [[10, 20]]}, {"points": [[250, 20]]}]', 1, "outside"),
    ('[{"points": [[10, 100]]}]', 0, "outside"),
    ('[{"points": [[-1, 5]]}]', 0, "outside"),
    ('[{"box": [10, 10, 201, 50]}]', 0, "outside"),
    ('[{"points": [[1, 1]]}, {"box": [50, 10, 50, 60]}]', 1, "x1 > x0"),
    ('[{"box": [10, 60, 50, 20]}]', 0, "y1 > y0"),
    ('[{"points": [[10, 20]], "labels": [1, 0]}]', 0, "2 labels for 1 points"),
    ('[{"points": [[10, 20]], "labels": [2]}]', 0, "labels must be"),
    ('[{}]', 0, "needs points, a box"),
    ('[{"points": [[10]]}]', 0, ""),
    ('[{"points": [[10, 20], [30, 20]], "label": [1, 0]}]', 0,
     "label: unknown key (did you mean 'labels'?); the keys are points, labels, box"),
])
def test_bad_prompt_names_the_offending_prompt(raw, index, words):
    error = refusal(raw)
    assert error["prompt_index"] == index and words in error["message"]


@pytest.mark.parametrize("raw", [
    "not json", "{", '{"points": [[1, 2]]}', "[]",
    "[" * 2000 + "]" * 2000,                     # deeper than the JSON parser goes
    '[{"points": [[' + "9" * 5000 + ', 10]]}]',  # an integer longer than Python parses
], ids=["text", "unclosed", "not a list", "empty", "deep nesting", "huge integer"])
def test_malformed_json_or_shape_is_refused(raw):
    assert "prompt_index" not in refusal(raw)


def test_more_prompts_than_max_objects_is_refused():
    error = refusal(json.dumps([{"points": [[1, 1]]}] * 3), max_objects=2)
    assert "MAX_OBJECTS" in error["message"]


def test_job_request_with_prompts_survives_a_json_round_trip():
    job = JobRequest(image=b"\x89PNG", prompts=[Prompt(points=[(1, 2)], labels=[0]),
                                                 Prompt(box=(0, 0, 5, 5))])
    assert JobRequest.model_validate_json(job.model_dump_json()) == job


def test_marks_are_grouped_by_the_one_rule_the_cli_and_the_page_share():
    grouped = lambda marks: json.loads(prompts_from_marks(json.dumps(marks)))  # noqa: E731
    assert grouped({"points": [[1, 2], [3, 4, 0]]}) == [{"points": [[1, 2], [3, 4]], "labels": [1, 0]}]
    assert grouped({"points": [[1, 2]], "boxes": [[0, 0, 5, 5]]}) == [
        {"points": [[1, 2]], "labels": [1], "box": [0, 0, 5, 5]}]  # a single box joins the points
    assert grouped({"points": [[1, 2]], "boxes": [[0, 0, 5, 5], [1, 1, 6, 6]]}) == [
        {"points": [[1, 2]], "labels": [1]}, {"box": [0, 0, 5, 5]}, {"box": [1, 1, 6, 6]}]


@pytest.mark.parametrize("raw", ['{}', '{"points": []}', '[[1, 2]]', '{"points": [[1]]}',
                                 '{"boxes": [[1, 2, 3]]}', '{"point": [[1, 2]]}', 'not json'])
def test_bad_marks_are_refused_naming_the_marks_field(raw):
    with pytest.raises(InvalidRequest) as caught:
        prompts_from_marks(raw)
    (error,) = caught.value.details["errors"]
    assert error["field"] == "marks" and caught.value.status == 422
