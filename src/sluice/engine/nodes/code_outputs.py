"""Validation of a code node's result against its declared outputs (§4.3, Q21).

Paths, rules and sentences follow the reference code node so failed runs report the same errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

SCIENTIFIC = re.compile(r"^-?\d+\.?\d*e[+-]\d+$", re.IGNORECASE)


class OutputValidationError(ValueError):
    pass


class CodeNodeError(ValueError):
    pass


class DepthLimitError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Limits:
    max_string_length: int = 400_000
    max_number: int | float = 9_223_372_036_854_775_807
    min_number: int | float = -9_223_372_036_854_775_808
    max_precision: int = 20
    max_depth: int = 5
    max_number_array_length: int = 1000
    max_string_array_length: int = 30
    max_object_array_length: int = 30

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        def pick(name: str, default: Any) -> Any:
            return getattr(settings, f"code_{name}", default)

        base = cls()
        return cls(**{name: pick(name, getattr(base, name)) for name in cls.__slots__})


def convert_scientific(value: Any) -> Any:
    """Q21: strings like ``1e+5`` at any depth become floats."""
    if isinstance(value, str) and SCIENTIFIC.match(value):
        try:
            return float(value)
        except ValueError:
            return value
    if isinstance(value, dict):
        return {k: convert_scientific(v) for k, v in value.items()}
    if isinstance(value, list):
        return [convert_scientific(v) for v in value]
    return value


def _path(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


class OutputValidator:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits

    def validate(self, result: Mapping[str, Any], schema: Mapping[str, Any] | None) -> dict[str, Any]:
        return dict(self._result(result, schema, "", 1))

    # -- scalars --------------------------------------------------------------------------------

    def _string(self, value: str | None, path: str) -> str | None:
        if value is None:
            return None
        if len(value) > self.limits.max_string_length:
            raise OutputValidationError(
                f"The length of output variable `{path}` must be less than "
                f"{self.limits.max_string_length} characters"
            )
        return value.replace("\x00", "")

    def _number(self, value: Any, path: str) -> Any:
        if value is None:
            return None
        limits = self.limits
        if value > limits.max_number or value < limits.min_number:
            raise OutputValidationError(
                f"Output variable `{path}` is out of range, it must be between "
                f"{limits.min_number} and {limits.max_number}."
            )
        if isinstance(value, float):
            exponent = Decimal(str(value)).normalize().as_tuple().exponent
            precision = -exponent if isinstance(exponent, int) and exponent < 0 else 0
            if precision > limits.max_precision:
                raise OutputValidationError(
                    f"Output variable `{path}` has too high precision, it must be less than "
                    f"{limits.max_precision} digits."
                )
        return value

    # -- untyped (nested objects without children) ----------------------------------------------

    def _untyped(self, name: str, value: Any, prefix: str, depth: int) -> None:
        path = _path(prefix, name)
        if isinstance(value, dict):
            self._result(value, None, path, depth + 1)
        elif isinstance(value, bool) or value is None:
            return
        elif isinstance(value, int | float):
            self._number(value, path)
        elif isinstance(value, str):
            self._string(value, path)
        elif isinstance(value, list):
            self._untyped_list(name, value, prefix, depth)
        else:
            raise OutputValidationError(f"Output {path} is not a valid type.")

    def _untyped_list(self, name: str, values: list[Any], prefix: str, depth: int) -> None:
        path = _path(prefix, name)
        first = values[0] if values else None
        if first is None:
            return
        if isinstance(first, int | float) and all(v is None or isinstance(v, int | float) for v in values):
            for i, v in enumerate(values):
                self._number(v, f"{path}[{i}]")
            return
        if isinstance(first, str) and all(v is None or isinstance(v, str) for v in values):
            for i, v in enumerate(values):
                self._string(v, f"{path}[{i}]")
            return
        same_dicts = isinstance(first, dict) and all(v is None or isinstance(v, dict) for v in values)
        same_lists = isinstance(first, list) and all(v is None or isinstance(v, list) for v in values)
        if same_dicts or same_lists:
            for i, v in enumerate(values):
                if v is not None:
                    self._result(v, None, f"{path}[{i}]", depth + 1)
            return
        raise OutputValidationError(
            f"Output {path} is not a valid array. make sure all elements are of the same type."
        )

    # -- declared outputs ----------------------------------------------------------------------

    def _result(
        self, result: Mapping[str, Any], schema: Mapping[str, Any] | None, prefix: str, depth: int
    ) -> Any:
        if depth > self.limits.max_depth:
            raise DepthLimitError(f"Depth limit {self.limits.max_depth} reached, object too deep.")
        if schema is None:
            for name, value in result.items():
                self._untyped(name, value, prefix, depth)
            return result
        out: dict[str, Any] = {}
        for name, config in schema.items():
            if name not in result:
                raise OutputValidationError(f"Output {_path(prefix, name)} is missing.")
            config = config if isinstance(config, Mapping) else {}
            out[name] = self._typed(
                name, str(config.get("type")), config.get("children"), result[name], prefix, depth
            )
        if len(out) != len(result):
            raise CodeNodeError("Not all output parameters are validated.")
        return out

    def _typed(self, name: str, kind: str, children: Any, value: Any, prefix: str, depth: int) -> Any:
        path = _path(prefix, name)
        if kind == "object":
            if value is None:
                return None
            if not isinstance(value, dict):
                raise OutputValidationError(f"Output {path} is not an object, got {type(value)} instead.")
            return self._result(value, children, path, depth + 1)
        if kind == "number":
            if value is not None and not isinstance(value, int | float):
                raise OutputValidationError(f"Output {path} is not a number, got {type(value)} instead.")
            checked = self._number(value, path)
            return int(checked) if isinstance(checked, bool) else checked
        if kind == "string":
            if value is not None and not isinstance(value, str):
                raise OutputValidationError(
                    f"Output {path} must be a string, got {type(value).__name__} instead."
                )
            return self._string(value, path)
        if kind == "boolean":
            return value
        if not kind.startswith("array["):
            raise OutputValidationError(f"Output type {kind} is not supported.")
        if value is None:
            return None
        if not isinstance(value, list):
            raise OutputValidationError(f"Output {path} is not an array, got {type(value)} instead.")
        return self._array(kind, children, value, path, depth)

    def _array(self, kind: str, children: Any, value: list[Any], path: str, depth: int) -> Any:
        limits = self.limits
        if kind == "array[number]":
            self._length(value, limits.max_number_array_length, path)
            for i, item in enumerate(value):
                if not isinstance(item, int | float):
                    raise OutputValidationError(
                        f"The element at index {i} of output variable `{path}` must be a number."
                    )
            return [int(v) if isinstance(v, bool) else v for v in value]
        if kind == "array[string]":
            self._length(value, limits.max_string_array_length, path)
            out: list[Any] = []
            for i, item in enumerate(value):
                if item is not None and not isinstance(item, str):
                    raise OutputValidationError(
                        f"Output {path}[{i}] must be a string, got {type(item).__name__} instead."
                    )
                out.append(self._string(item, f"{path}[{i}]"))
            return out
        if kind == "array[object]":
            self._length(value, limits.max_object_array_length, path)
            objects: list[Any] = []
            for i, item in enumerate(value):
                if item is None:
                    objects.append(None)
                    continue
                if not isinstance(item, dict):
                    raise OutputValidationError(
                        f"Output {path}[{i}] is not an object, got {type(item)} instead at index {i}."
                    )
                objects.append(self._result(item, children, f"{path}[{i}]", depth + 1))
            return objects
        if kind == "array[boolean]":
            for i, item in enumerate(value):
                if item is not None and not isinstance(item, bool):
                    raise OutputValidationError(
                        f"Output {path}[{i}] is not a boolean, got {type(item)} instead."
                    )
            return value
        raise OutputValidationError(f"Output type {kind} is not supported.")

    @staticmethod
    def _length(value: list[Any], limit: int, path: str) -> None:
        if len(value) > limit:
            raise OutputValidationError(
                f"The length of output variable `{path}` must be less than {limit} elements."
            )
