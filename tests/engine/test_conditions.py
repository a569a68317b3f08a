"""If-else condition evaluation (engine.md §4.2, §9 scenarios 6–10) at the evaluator level."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from sluice.engine.conditions import (
    OPERATORS,
    ConditionError,
    VariableNotFound,
    coerce_expected,
    evaluate_case,
    evaluate_condition,
    evaluate_file_condition,
    evaluate_if_else,
    if_else_cases,
)


def file(extension: str = ".pdf", **extra: Any) -> dict[str, Any]:
    return {
        "dify_model_identity": "__dify__file__",
        "id": "f1",
        "type": "document",
        "transfer_method": "remote_url",
        "remote_url": "https://x.test/a" + extension,
        "related_id": None,
        "filename": "a" + extension,
        "extension": extension,
        "mime_type": "application/pdf",
        "size": 100,
        "url": "https://x.test/a" + extension,
        **extra,
    }


POOL: dict[tuple[str, ...], Any] = {
    ("start", "name"): "Ada",
    ("start", "n"): 7,
    ("start", "f"): 2.5,
    ("start", "none"): None,
    ("start", "flag"): True,
    ("start", "tags"): ["a", "b"],
    ("start", "nums"): [1, 2],
    ("start", "files"): [file(".pdf"), file(".png", type="image")],
    ("start", "empty_files"): [],
    ("start", "bools"): [True, False],
}


def resolve_actual(selector: list[str]) -> Any:
    key = tuple(selector)
    if key not in POOL:
        raise VariableNotFound(selector)
    return POOL[key]


def resolve_expected(text: str) -> str:
    return text.replace("{{#start.name#}}", "Ada")


def cond(selector: str, operator: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    return {
        "variable_selector": selector.split("."),
        "comparison_operator": operator,
        "value": value,
        **extra,
    }


def case(*conditions: Mapping[str, Any], logical: str = "and", case_id: str = "c") -> dict[str, Any]:
    return {"case_id": case_id, "logical_operator": logical, "conditions": list(conditions)}


# --- every operator, true/false table -----------------------------------------------------------

TRUTH_TABLE: list[tuple[Any, str, Any, bool]] = [
    # scenario 6: string operators
    ("abc", "contains", "b", True),
    ("abc", "contains", "z", False),
    (None, "contains", "b", False),
    ("", "contains", "", False),
    ("a1", "contains", 1, True),  # str(e) in v
    ("", "not contains", "x", True),
    (None, "not contains", "x", True),
    ("abc", "not contains", "b", False),
    ("abc", "not contains", "z", True),
    ("abc", "start with", "ab", True),
    ("abc", "start with", "bc", False),
    ("", "start with", "x", False),
    (None, "start with", "x", False),
    ("abc", "end with", "bc", True),
    ("abc", "end with", "ab", False),
    (None, "end with", 1, False),
    ("abc", "is", "abc", True),
    ("abc", "is", "ab", False),
    ("abc", "is not", "ab", True),
    ("abc", "is not", "abc", False),
    (None, "is", "x", False),  # Q7: both false on None
    (None, "is not", "x", False),
    (0, "empty", None, True),  # Q7
    (False, "empty", None, True),
    ("", "empty", None, True),
    ([], "empty", None, True),
    ({}, "empty", None, True),
    (None, "empty", None, True),
    ("a", "empty", None, False),
    ("a", "not empty", None, True),
    (0, "not empty", None, False),
    ([0], "not empty", None, True),
    # scenario 7: number operators
    (7, "=", "7", True),
    (7, "=", "8", False),
    (7, "=", 7, True),
    (7, "=", 7.9, True),  # int(7.9) == 7, as the reference
    (2.5, "=", "2.5", True),
    (2.0, "=", "2", True),
    (7, "≠", "8", True),
    (7, "≠", "7", False),
    (None, "=", "7", False),
    (None, "≠", "7", False),
    (14, ">", "10", True),
    (10, ">", "10", False),
    (10, ">", "9.5", True),
    (1.5, "<", "2.5", True),
    (2.5, "<", "2.5", False),
    (2.5, "≥", "2.5", True),
    (2.4, "≥", "2.5", False),
    (2.5, "≤", "2.5", True),
    (2.6, "≤", "2.5", False),
    (3, "<", 3.5, True),
    (3, ">", 2, True),
    (None, ">", "1", False),
    (None, "<", "x", False),
    (True, ">", "0", True),  # bool is an int for comparisons
    # scenario 8: null / membership
    (None, "null", None, True),
    ("", "null", None, False),
    (None, "not null", None, False),
    (0, "not null", None, True),
    (None, "exists", None, False),
    ("x", "exists", None, True),
    (None, "not exists", None, True),
    ([], "not exists", None, False),
    ("b", "in", ["a", "b"], True),
    ("c", "in", ["a", "b"], False),
    ("", "in", ["", "b"], False),  # falsy v → false
    (None, "in", ["a"], False),
    (None, "not in", ["a"], True),
    ("", "not in", "not-a-list", True),
    ("c", "not in", ["a", "b"], True),
    ("a", "not in", ["a", "b"], False),
    (["a", "b", "c"], "all of", ["a", "c"], True),
    (["a", "b"], "all of", ["a", "c"], False),
    ("abc", "all of", ["a", "c"], True),  # str v: substrings
    ([], "all of", ["a"], False),
    ({"a": 1}, "all of", ["a"], False),  # other v → false
    (["a"], "all of", [], True),
    # scenario 9: booleans and arrays
    (True, "is", "true", True),
    (True, "is", "false", False),
    (False, "is", "0", True),
    (True, "is not", "false", True),
    (True, "=", "1", True),
    (False, "≠", "true", True),
    (True, "is", True, True),
    (["a", "b"], "contains", "a", True),
    (["a", "b"], "contains", "c", False),
    ([1, 2], "contains", "1", False),
    ([1, 2], "not contains", "1", True),
    ([True, True], "contains", "true", True),
    ([False], "contains", "true", False),
    ([True, False], "all of", ["true", "0"], True),
    ([True], "all of", ["false"], False),
    ([True], "in", ["true"], False),  # lists are compared, not their items
]


@pytest.mark.parametrize(("actual", "operator", "expected", "result"), TRUTH_TABLE)
def test_truth_table(actual: Any, operator: str, expected: Any, result: bool) -> None:
    assert evaluate_condition(actual, operator, expected) is result


def test_truth_table_covers_every_operator() -> None:
    assert {row[1] for row in TRUTH_TABLE} == OPERATORS
    assert len(OPERATORS) == 21


# --- type errors ------------------------------------------------------------------------------

ERRORS: list[tuple[Any, str, Any, str]] = [
    (7, "=", "7.0", "invalid literal for int() with base 10: '7.0'"),  # scenario 7 / Q6
    (7, "=", "abc", "invalid literal for int() with base 10: 'abc'"),
    (2.5, "=", "abc", "could not convert string to float: 'abc'"),
    ("abc", "=", "abc", "Invalid actual value type: number or boolean"),  # Q6: = on a string
    ("abc", "≠", "x", "Invalid actual value type: number or boolean"),
    ([1], "=", "1", "Invalid actual value type: number or boolean"),
    (7, "=", ["7"], "Cannot convert <class 'list'> to int"),
    (7, "=", None, "Cannot convert <class 'NoneType'> to int"),
    (2.5, "=", None, "Cannot convert <class 'NoneType'> to float"),
    (True, "=", None, "Cannot convert <class 'NoneType'> to bool"),
    (7, ">", "abc", "Cannot convert 'abc' to number"),
    (7, "<", "", "Cannot convert '' to number"),
    (7, ">", None, "Cannot convert <class 'NoneType'> to number"),
    (7, "≥", ["1"], "Cannot convert <class 'list'> to number"),
    ("8", ">", "1", "Invalid actual value type: number"),
    ([1], "≤", "1", "Invalid actual value type: number"),
    (5, "contains", "5", "Invalid actual value type: string or array"),
    ({"a": 1}, "not contains", "a", "Invalid actual value type: string or array"),
    (5, "start with", "5", "Invalid actual value type: string"),
    (["a"], "end with", "a", "Invalid actual value type: string"),
    ("abc", "start with", None, "Expected value must be a string for startswith"),
    ("abc", "end with", ["c"], "Expected value must be a string for endswith"),
    (5, "is", "5", "Invalid actual value type: string or boolean"),
    ([1], "is not", "1", "Invalid actual value type: string or boolean"),
    ("a", "in", "abc", "Invalid expected value type: array"),
    ("a", "not in", None, "Invalid expected value type: array"),
    (["a"], "all of", "a", "all of operator expects homogeneous list of strings or booleans"),
    (["a"], "all of", ["a", 1], "all of operator expects homogeneous list of strings or booleans"),
    (None, "all of", None, "all of operator expects homogeneous list of strings or booleans"),
    (True, "is", "abc", "Expecting value: line 1 column 1 (char 0)"),  # boolean coercion
    (True, "is", "", "Expecting value: line 1 column 1 (char 0)"),
    (True, "is", "1.5", "unexpected value: type=<class 'str'>, value=1.5"),
    (True, "is", '"x"', "unexpected value: type=<class 'str'>, value=\"x\""),
    ([True], "contains", ["abc"], "Expecting value: line 1 column 1 (char 0)"),
    ("x", "like", "x", "Unsupported operator: like"),
]


@pytest.mark.parametrize(("actual", "operator", "expected", "message"), ERRORS)
def test_errors(actual: Any, operator: str, expected: Any, message: str) -> None:
    with pytest.raises(ConditionError) as info:
        evaluate_condition(actual, operator, expected)
    assert info.value.message == message
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


def test_unary_operators_ignore_expected() -> None:
    assert evaluate_condition(True, "null", "abc") is False
    assert evaluate_condition(None, "not exists", object()) is True


# --- expected-value coercion --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actual", "expected", "coerced"),
    [
        (True, "true", True),
        (True, "1", True),
        (True, "0", False),
        (True, " false ", False),
        (False, 1, True),
        (True, False, False),
        (True, ["true", "0"], [True, False]),
        ([True], "2", True),
        (True, None, None),
        ("x", "true", "true"),  # non-boolean actual: untouched
        ([], "abc", "abc"),  # an untyped empty list is not array[boolean]
        (7, "1", "1"),
    ],
)
def test_coerce_expected(actual: Any, expected: Any, coerced: Any) -> None:
    assert coerce_expected(actual, expected) == coerced
    assert coerce_expected(actual, coerce_expected(actual, expected)) == coerced  # idempotent


def test_coerce_expected_typed_empty_list() -> None:
    assert coerce_expected([], "1", var_type="array[boolean]") is True
    with pytest.raises(ConditionError):
        coerce_expected([], "abc", var_type="array[boolean]")


# --- array[file] ----------------------------------------------------------------------------------

FILES = [file(".pdf"), file(".png", type="image", mime_type="image/png", size=5000)]


def sub(*conditions: tuple[str, str, Any], logical: str = "and") -> dict[str, Any]:
    return {
        "logical_operator": logical,
        "conditions": [{"key": k, "comparison_operator": op, "value": v} for k, op, v in conditions],
    }


@pytest.mark.parametrize(
    ("sub_condition", "result"),
    [
        (sub(("extension", "is", "pdf")), True),  # scenario 9: both sides get a leading dot
        (sub(("extension", "is", ".pdf")), True),
        (sub(("extension", "is", "doc")), False),
        (sub(("extension", "is not", "doc")), True),  # "not" → all files
        (sub(("extension", "is not", "pdf")), False),
        (sub(("type", "is", "image")), True),  # any file
        (sub(("type", "in", ["image", "video"])), True),
        (sub(("type", "not in", ["image", "document"])), False),
        (sub(("name", "start with", "a.")), True),
        (sub(("mime_type", "contains", "png")), True),
        (sub(("size", ">", "1000")), True),
        (sub(("size", "<", "10")), False),
        (sub(("transfer_method", "is", "remote_url")), True),
        (sub(("url", "end with", ".png")), True),
        (sub(("related_id", "null", None)), True),
        (sub(("related_id", "not null", None)), False),
        (sub(("type", "is", "image"), ("size", "<", "10")), False),
        (sub(("type", "is", "image"), ("size", "<", "10"), logical="or"), True),
        (sub(), True),  # no sub-conditions: all([])
        (sub(logical="or"), False),
    ],
)
def test_file_sub_conditions(sub_condition: dict[str, Any], result: bool) -> None:
    for operator in ("contains", "not contains", "all of"):  # the outer operator only routes
        assert evaluate_file_condition(FILES, operator, sub_condition) is result


@pytest.mark.parametrize(
    ("sub_condition", "message"),
    [
        (None, "Sub variable is required"),
        ({}, "Sub variable is required"),
        (sub(("color", "is", "red")), "'color' is not a valid FileAttribute"),
        (
            sub(("extension", "in", ["pdf"])),
            "Expected value must be a string when key is FileAttribute.EXTENSION",
        ),
        (sub(("size", ">", "big")), "Cannot convert 'big' to number"),
    ],
)
def test_file_sub_condition_errors(sub_condition: dict[str, Any] | None, message: str) -> None:
    with pytest.raises(ConditionError) as info:
        evaluate_file_condition(FILES, "contains", sub_condition)
    assert info.value.message == message


def test_url_falls_back_to_remote_url() -> None:
    files = [file(".pdf", url=None)]
    assert evaluate_file_condition(files, "contains", sub(("url", "start with", "https://"))) is True


# --- evaluate_case ------------------------------------------------------------------------------


def run(*conditions: Mapping[str, Any], logical: str = "and") -> Any:
    return evaluate_case(case(*conditions, logical=logical), resolve_actual, resolve_expected)


def test_case_and_records_inputs() -> None:
    outcome = run(cond("start.n", ">", "5"), cond("start.name", "contains", "{{#start.name#}}"))
    assert outcome.result is True
    assert outcome.results == [True, True]
    assert outcome.inputs == [
        {"actual_value": 7, "expected_value": "5", "comparison_operator": ">"},
        {"actual_value": "Ada", "expected_value": "Ada", "comparison_operator": "contains"},
    ]


def test_and_stops_at_first_false() -> None:
    outcome = run(cond("start.n", "<", "5"), cond("nope.missing", "null"))
    assert (outcome.result, outcome.results) == (False, [False])


def test_or_stops_at_first_true_and_never_looks_up_later_variables() -> None:  # scenario 10
    outcome = run(cond("start.n", "=", "7"), cond("nope.missing", "null"), logical="or")
    assert (outcome.result, outcome.results) == (True, [True])


def test_or_all_false() -> None:
    outcome = run(cond("start.n", "=", "1"), cond("start.name", "is", "Bob"), logical="or")
    assert (outcome.result, outcome.results) == (False, [False, False])


def test_empty_case() -> None:
    assert run().result is True
    assert run(logical="or").result is False


@pytest.mark.parametrize("operator", ["null", "not null", "exists", "not exists", "empty", "is"])
def test_absent_variable_fails_even_for_existence_operators(operator: str) -> None:  # Q5
    with pytest.raises(VariableNotFound) as info:
        run(cond("nope.missing", operator, "x"))
    assert str(info.value) == "Variable ['nope', 'missing'] not found"
    assert info.value.selector == ["nope", "missing"]
    assert isinstance(info.value, ConditionError)


def test_inputs_omit_exists_operators_and_file_sub_conditions() -> None:
    outcome = run(
        cond("start.none", "not exists"),
        cond("start.name", "exists"),
        cond("start.none", "null", ""),
        cond("start.tags", "not empty"),
        cond("start.files", "contains", sub_variable_condition=sub(("extension", "is", "pdf"))),
    )
    assert outcome.results == [True, True, True, True, True]
    assert outcome.inputs == [
        {"actual_value": None, "expected_value": "", "comparison_operator": "null"},
        {"actual_value": ["a", "b"], "expected_value": None, "comparison_operator": "not empty"},
    ]


def test_expected_lists_are_not_templated_and_booleans_recorded_coerced() -> None:
    outcome = run(cond("start.name", "in", ["{{#start.name#}}"]), logical="or")
    assert outcome.inputs[0]["expected_value"] == ["{{#start.name#}}"]
    outcome = run(cond("start.flag", "is", "true"))
    assert outcome.inputs == [{"actual_value": True, "expected_value": True, "comparison_operator": "is"}]


def test_quirk_boolean_actual_with_blank_value_fails_for_null() -> None:
    # the reference prepares the expected value for null/empty too, and "" is not JSON
    with pytest.raises(ConditionError, match="Expecting value"):
        run(cond("start.flag", "null", ""))
    assert run(cond("start.flag", "exists", "")).result is True  # exists never looks at it


def test_file_array_routes_to_sub_conditions() -> None:  # scenario 9
    with pytest.raises(ConditionError, match=r"^Sub variable is required$"):
        run(cond("start.files", "contains", "pdf"))
    matched = cond("start.files", "contains", sub_variable_condition=sub(("extension", "is", "pdf")))
    assert run(matched).result is True
    assert run(cond("start.files", "not empty")).result is True  # other operators: plain semantics


def test_empty_file_array_uses_sub_conditions_when_typed() -> None:
    not_image = sub(("type", "is not", "image"))
    typed = cond("start.empty_files", "contains", sub_variable_condition=not_image, varType="array[file]")
    assert run(typed).result is True  # all([]) over no files, as the reference
    with pytest.raises(ConditionError, match="Sub variable is required"):
        run(cond("start.empty_files", "contains", "x", varType="array[file]"))
    assert run(cond("start.empty_files", "contains", "x")).result is False  # untyped empty list


# --- evaluate_if_else (cases) -------------------------------------------------------------------


def test_first_true_case_wins() -> None:  # scenario 10
    data = {
        "cases": [
            case(cond("start.n", ">", "100"), case_id="c1"),
            case(cond("start.n", "=", "7"), case_id="c2"),
            case(cond("start.name", "is", "Ada"), case_id="c3"),
        ]
    }
    outcome = evaluate_if_else(data, resolve_actual, resolve_expected)
    assert (outcome.result, outcome.selected_case_id, outcome.handle, outcome.error) == (
        True,
        "c2",
        "c2",
        None,
    )
    assert [r["results"] for r in outcome.condition_results] == [[False], [True]]
    assert outcome.condition_results[1]["group"]["case_id"] == "c2"
    assert outcome.condition_results[1]["group"]["conditions"][0] == {
        "variable_selector": ["start", "n"],
        "comparison_operator": "=",
        "value": "7",
        "sub_variable_condition": None,
    }
    assert outcome.inputs == [{"actual_value": 7, "expected_value": "7", "comparison_operator": "="}]


def test_no_case_true_selects_false() -> None:
    data = {"cases": [case(cond("start.n", ">", "100"), case_id="c1")]}
    outcome = evaluate_if_else(data, resolve_actual, resolve_expected)
    assert (outcome.result, outcome.selected_case_id, outcome.handle) == (False, "false", "false")
    assert outcome.inputs == [{"actual_value": 7, "expected_value": "100", "comparison_operator": ">"}]


def test_legacy_shape_selects_true() -> None:  # scenario 10
    data = {
        "logical_operator": "or",
        "conditions": [cond("start.n", "=", "1"), cond("start.name", "is", "Ada")],
    }
    cases, legacy = if_else_cases(data)
    assert legacy and cases[0]["case_id"] == "true"
    outcome = evaluate_if_else(data, resolve_actual, resolve_expected)
    assert (outcome.selected_case_id, outcome.handle) == ("true", "true")
    assert outcome.condition_results == [{"group": "default", "results": [False, True], "final_result": True}]


def test_failure_keeps_results_so_far_and_empties_inputs() -> None:  # scenarios 7 and 11
    data = {
        "cases": [
            case(cond("start.n", ">", "100"), case_id="c1"),
            case(cond("start.n", "=", "7.0"), case_id="c2"),
        ]
    }
    outcome = evaluate_if_else(data, resolve_actual, resolve_expected)
    assert outcome.error == "invalid literal for int() with base 10: '7.0'"
    assert (outcome.result, outcome.inputs, len(outcome.condition_results)) == (False, [], 1)

    absent = evaluate_if_else(
        {"cases": [case(cond("nope.missing", "exists"))]}, resolve_actual, resolve_expected
    )
    assert absent.error == "Variable ['nope', 'missing'] not found"
