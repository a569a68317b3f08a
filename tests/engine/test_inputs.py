"""prepare_inputs (engine.md §3.6) and its wire-contract sentences (service-api.md §6, §11 scenarios 8–12)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sluice.engine import json_schema_lite
from sluice.engine.inputs import InputError, coerce_checkbox, coerce_number, prepare_inputs, strip_nul

# service-api.md §11 fixture: query paragraph required max_length 10, color select optional, count number.
FORM: list[dict[str, Any]] = [
    {"variable": "query", "label": "Query", "type": "paragraph", "required": True, "max_length": 10},
    {"variable": "color", "label": "Color", "type": "select", "required": False, "options": ["red", "green"]},
    {"variable": "count", "label": "Count", "type": "number", "required": False},
]

FILE = {
    "dify_model_identity": "__dify__file__",
    "id": None,
    "type": "document",
    "transfer_method": "remote_url",
    "remote_url": "https://x.test/a.pdf",
    "related_id": None,
    "filename": "a.pdf",
    "extension": ".pdf",
    "mime_type": "application/pdf",
    "size": 10,
    "url": "https://x.test/a.pdf",
}


def var(name: str = "x", type_: str = "text-input", **extra: Any) -> dict[str, Any]:
    return {"variable": name, "label": name, "type": type_, "required": False, **extra}


def error_of(variables: list[dict[str, Any]], raw: dict[str, Any] | None) -> InputError:
    with pytest.raises(InputError) as info:
        prepare_inputs(variables, raw)
    return info.value


# --- service-api.md §11 scenarios 8–12 -----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "query is required in input form"),  # 8
        (None, "query is required in input form"),
        ({"query": None}, "query is required in input form"),
        ({"query": 5}, "(type 'paragraph') query in input form must be a string"),  # 9
        (
            {"query": "hi", "color": "blue"},
            "color in input form must be one of the following: ['red', 'green']",
        ),
        ({"query": "01234567890"}, "query in input form must be less than 10 characters"),  # 11
        ({"query": "hi", "count": "abc"}, "count in input form must be a valid number"),  # 12
    ],
)
def test_service_scenarios_rejected(raw: dict[str, Any] | None, message: str) -> None:
    error = error_of(FORM, raw)
    assert error.message == message
    assert str(error) == message
    assert isinstance(error, ValueError)


def test_service_scenarios_accepted() -> None:
    assert prepare_inputs(FORM, {"query": ""}) == {"query": "", "color": None, "count": None}  # 9
    assert prepare_inputs(FORM, {"query": "hi", "count": "3"}) == {"query": "hi", "color": None, "count": 3}
    assert prepare_inputs(FORM, {"query": "0123456789", "color": "green"})["query"] == "0123456789"


def test_error_names_the_variable_and_first_failure_wins() -> None:
    error = error_of(FORM, {"query": 5, "color": "blue", "count": "abc"})
    assert error.variable == "query"
    error = error_of(FORM, {"query": "hi", "color": "blue", "count": "abc"})
    assert (error.variable, error.message) == (
        "color",
        "color in input form must be one of the following: ['red', 'green']",
    )


def test_undeclared_and_sys_keys_dropped_and_order_is_declaration_order() -> None:
    raw = {"count": 1, "extra": "x", "sys.query": "q", "query": "hi"}
    result = prepare_inputs(FORM, raw)
    assert list(result) == ["query", "color", "count"]
    declared_sys = [*FORM, var("sys.user_id")]
    assert "sys.user_id" not in prepare_inputs(declared_sys, {"query": "hi", "sys.user_id": "u"})


# --- absent / None / default --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declaration", "raw", "expected"),
    [
        (var(), {}, None),
        (var(), {"x": None}, None),
        (var(default="dflt"), {}, "dflt"),
        (var(default="dflt"), {"x": None}, "dflt"),
        (var(default="dflt"), {"x": ""}, ""),  # "" is a value, the default does not apply
        (var(type_="number", default="4"), {}, 4),  # the default is validated (and converted) like a value
        (var(type_="checkbox", default="yes"), {}, True),
        (var(type_="select", options=["a"], default="a"), {}, "a"),
    ],
)
def test_optional_defaults(declaration: dict[str, Any], raw: dict[str, Any], expected: Any) -> None:
    assert prepare_inputs([declaration], raw) == {"x": expected}


def test_required_ignores_default() -> None:
    declaration = var(required=True, default="dflt")
    assert error_of([declaration], {}).message == "x is required in input form"
    assert error_of([declaration], {"x": None}).message == "x is required in input form"


def test_invalid_default_is_reported_like_a_value() -> None:
    declaration = var(type_="select", options=["a", "b"], default="z")
    assert error_of([declaration], {}).message == "x in input form must be one of the following: ['a', 'b']"


# --- text, paragraph, select --------------------------------------------------------------------


@pytest.mark.parametrize("type_", ["text-input", "paragraph", "select"])
@pytest.mark.parametrize("value", [5, 1.5, True, ["a"], {"a": 1}])
def test_string_types_reject_non_strings(type_: str, value: Any) -> None:
    declaration = var(type_=type_, options=["a"])
    assert (
        error_of([declaration], {"x": value}).message == f"(type '{type_}') x in input form must be a string"
    )


@pytest.mark.parametrize(
    ("max_length", "value", "ok"),
    [
        (3, "abc", True),
        (3, "abcd", False),
        (3, "日本語", True),  # code points, not bytes
        (3, "😀😀😀", True),
        (3, "😀😀😀😀", False),
        (0, "x" * 1000, True),  # 0 disables the limit
        (None, "x" * 1000, True),
        (-1, "abc", True),
        (3, "", True),
    ],
)
def test_text_max_length(max_length: int | None, value: str, ok: bool) -> None:
    declaration = var(max_length=max_length)
    if ok:
        assert prepare_inputs([declaration], {"x": value}) == {"x": value}
    else:
        assert (
            error_of([declaration], {"x": value}).message
            == f"x in input form must be less than {max_length} characters"
        )


def test_select_does_not_apply_max_length_and_checks_empty_string() -> None:
    declaration = var(type_="select", options=["long value"], max_length=2)
    assert prepare_inputs([declaration], {"x": "long value"}) == {"x": "long value"}
    assert (
        error_of([declaration], {"x": ""}).message
        == "x in input form must be one of the following: ['long value']"
    )
    assert (
        error_of([var(type_="select")], {"x": "a"}).message
        == "x in input form must be one of the following: []"
    )


# --- number -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, 3),
        (2.5, 2.5),
        (0, 0),
        ("3", 3),
        ("2.5", 2.5),
        ("-4", -4),
        ("3.0", 3.0),
        (" 7 ", 7),
        ("", None),
        ("   ", None),
    ],
)
def test_number_accepted(value: Any, expected: Any) -> None:
    result = prepare_inputs([var(type_="number")], {"x": value})["x"]
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize("value", ["abc", "1e5", "1.2.3", True, False, [1], {"a": 1}])
def test_number_rejected(value: Any) -> None:
    assert error_of([var(type_="number")], {"x": value}).message == "x in input form must be a valid number"


def test_required_number_empty_string_becomes_none() -> None:
    assert prepare_inputs([var(type_="number", required=True)], {"x": ""}) == {"x": None}


def test_coerce_number_helper() -> None:
    assert coerce_number("10") == 10
    with pytest.raises(ValueError):
        coerce_number(True)


# --- checkbox -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("TRUE", True),
        (" Yes ", True),
        ("on", True),
        ("1", True),
        ("false", False),
        ("No", False),
        ("OFF", False),
        ("0", False),
        (1, True),
        (0, False),
        (1.0, True),
    ],
)
def test_checkbox_accepted(value: Any, expected: bool) -> None:
    assert prepare_inputs([var(type_="checkbox")], {"x": value}) == {"x": expected}
    assert coerce_checkbox(value) is expected


@pytest.mark.parametrize("value", ["", "maybe", "2", 2, -1, 0.5, [], {}])
def test_checkbox_rejected(value: Any) -> None:
    assert error_of([var(type_="checkbox")], {"x": value}).message == "x in input form must be a boolean"


# --- json_object --------------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 5},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "tags": {"type": "array", "items": {"type": "string"}},
        "kind": {"enum": ["a", "b"]},
    },
    "required": ["name"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("value", [{"a": 1}, {}, "", 0, [], False])
def test_json_object_accepts_mappings_and_falsy_values(value: Any) -> None:
    assert prepare_inputs([var(type_="json_object")], {"x": value}) == {"x": value}


@pytest.mark.parametrize("value", ["text", [1], 5, True])
def test_json_object_rejects_truthy_non_mappings(value: Any) -> None:
    assert error_of([var(type_="json_object")], {"x": value}).message == "x in input form must be a dict"


@pytest.mark.parametrize("schema", [SCHEMA, json.dumps(SCHEMA)])
def test_json_object_schema_valid(schema: Any) -> None:
    value = {"name": "Ada", "age": 36, "tags": ["x"], "kind": "a"}
    assert prepare_inputs([var(type_="json_object", json_schema=schema)], {"x": value}) == {"x": value}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"age": 3}, "'name' is a required property"),
        ({"name": 5}, "5 is not of type 'string'"),
        ({"name": ""}, "'' is too short"),
        ({"name": "abcdef"}, "'abcdef' is too long"),
        ({"name": "a", "age": -1}, "-1 is less than the minimum of 0"),
        ({"name": "a", "age": 151}, "151 is greater than the maximum of 150"),
        ({"name": "a", "age": 1.5}, "1.5 is not of type 'integer'"),
        ({"name": "a", "tags": ["x", 2]}, "2 is not of type 'string'"),
        ({"name": "a", "kind": "c"}, "'c' is not one of ['a', 'b']"),
        ({"name": "a", "zz": 1}, "Additional properties are not allowed ('zz' was unexpected)"),
    ],
)
def test_json_object_schema_violations(value: dict[str, Any], reason: str) -> None:
    error = error_of([var(type_="json_object", json_schema=SCHEMA)], {"x": value})
    assert error.message == f"x in input form does not match the JSON schema: {reason}"


def test_json_object_schema_skipped_for_empty_values_and_blank_schema() -> None:
    assert prepare_inputs([var(type_="json_object", json_schema=SCHEMA)], {"x": {}}) == {"x": {}}
    assert prepare_inputs([var(type_="json_object", json_schema="")], {"x": {"a": 1}}) == {"x": {"a": 1}}


def test_json_object_invalid_schema_text() -> None:
    error = error_of([var(type_="json_object", json_schema="{not json")], {"x": {"a": 1}})
    assert error.message.startswith("x in input form has an invalid JSON schema: ")


# --- json_schema_lite details -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instance", "schema", "reason"),
    [
        (1, {"type": "number"}, None),
        (True, {"type": "number"}, "True is not of type 'number'"),
        (True, {"type": "integer"}, "True is not of type 'integer'"),
        (2.0, {"type": "integer"}, None),
        (None, {"type": ["string", "null"]}, None),
        (3, {"type": ["string", "null"]}, "3 is not of type 'string', 'null'"),
        ({"a": 1}, {"type": "object"}, None),
        ([1, 2], {"type": "array", "minItems": 3}, "[1, 2] is too short"),
        ([1, 2], {"type": "array", "maxItems": 1}, "[1, 2] is too long"),
        (True, {"enum": [1]}, "True is not one of [1]"),
        (1.0, {"enum": [1]}, None),
        (5, {"exclusiveMaximum": 5}, "5 is greater than or equal to the maximum of 5"),
        (5, {"exclusiveMinimum": 5}, "5 is less than or equal to the minimum of 5"),
        ("x", {"const": "y"}, "'y' was expected"),
        ("x", True, None),
        ("x", False, "False schema does not allow 'x'"),
        (
            {"a": 1, "b": 2},
            {"additionalProperties": False},
            "Additional properties are not allowed ('a', 'b' were unexpected)",
        ),
        ({"a": 1}, {"additionalProperties": {"type": "string"}}, "1 is not of type 'string'"),
        ([1, "x"], {"items": [{"type": "integer"}, {"type": "integer"}]}, "'x' is not of type 'integer'"),
        # the shallowest error wins
        (
            {"a": {"b": 1}},
            {"properties": {"a": {"properties": {"b": {"type": "string"}}}}, "required": ["z"]},
            "'z' is a required property",
        ),
        ("abc", {"type": "string", "pattern": "^z"}, None),  # unsupported keywords never reject
    ],
)
def test_json_schema_lite(instance: Any, schema: Any, reason: str | None) -> None:
    assert json_schema_lite.find_error(instance, schema) == reason
    assert json_schema_lite.is_valid(instance, schema) is (reason is None)
    if reason is not None:
        with pytest.raises(json_schema_lite.SchemaValidationError) as info:
            json_schema_lite.validate(instance, schema)
        assert info.value.message == reason


def test_parse_schema() -> None:
    assert json_schema_lite.parse_schema(None) is None
    assert json_schema_lite.parse_schema("  ") is None
    assert json_schema_lite.parse_schema('{"type": "object"}') == {"type": "object"}
    with pytest.raises(ValueError):
        json_schema_lite.parse_schema("[1]")


# --- files --------------------------------------------------------------------------------------


def test_file_accepts_mapping() -> None:
    assert prepare_inputs([var(type_="file")], {"x": FILE}) == {"x": FILE}


@pytest.mark.parametrize("value", ["a.pdf", [FILE], 1, True])
def test_file_rejects_non_mapping(value: Any) -> None:
    assert error_of([var(type_="file")], {"x": value}).message == "x in input form must be a file"


def test_file_empty_string() -> None:
    assert prepare_inputs([var(type_="file")], {"x": ""}) == {"x": None}
    assert error_of([var(type_="file", required=True)], {"x": ""}).message == "x in input form must be a file"


def test_file_list() -> None:
    assert prepare_inputs([var(type_="file-list")], {"x": [FILE, FILE]}) == {"x": [FILE, FILE]}
    assert prepare_inputs([var(type_="file-list")], {"x": []}) == {"x": []}
    assert prepare_inputs([var(type_="file-list", required=True)], {"x": []}) == {"x": []}
    assert prepare_inputs([var(type_="file-list")], {"x": ""}) == {"x": None}


@pytest.mark.parametrize("value", [FILE, [FILE, "b"], ["a"], "a", 1])
def test_file_list_rejected(value: Any) -> None:
    assert (
        error_of([var(type_="file-list")], {"x": value}).message == "x in input form must be a list of files"
    )
    assert error_of([var(type_="file-list", required=True)], {"x": ""}).message == (
        "x in input form must be a list of files"
    )


def test_file_list_max_length() -> None:
    declaration = var(type_="file-list", max_length=3)
    assert prepare_inputs([declaration], {"x": [FILE] * 3}) == {"x": [FILE] * 3}
    assert error_of([declaration], {"x": [FILE] * 4}).message == "x in input form must be less than 3 files"


# --- other types, sanitising --------------------------------------------------------------------


def test_external_data_tool_passes_through() -> None:
    assert prepare_inputs([var(type_="external_data_tool")], {"x": {"k": 1}}) == {"x": {"k": 1}}


def test_nul_characters_stripped_after_validation() -> None:
    assert prepare_inputs([var()], {"x": "a\x00b"}) == {"x": "ab"}
    value = {"a": ["x\x00", {"b": "\x00y"}], "n": 1}
    assert prepare_inputs([var(type_="json_object")], {"x": value}) == {"x": {"a": ["x", {"b": "y"}], "n": 1}}
    files = prepare_inputs([var(type_="file-list")], {"x": [{**FILE, "filename": "a\x00.pdf"}]})
    assert files["x"][0]["filename"] == "a.pdf"
    # the length check sees the raw value (validation precedes sanitising, as in Dify)
    assert (
        error_of([var(max_length=2)], {"x": "ab\x00"}).message
        == "x in input form must be less than 2 characters"
    )


def test_strip_nul_helper() -> None:
    assert strip_nul(("a\x00",)) == ["a"]
    assert strip_nul(5) == 5


def test_input_is_not_mutated() -> None:
    raw = {"x": {"a": "b\x00"}}
    prepare_inputs([var(type_="json_object")], raw)
    assert raw == {"x": {"a": "b\x00"}}
