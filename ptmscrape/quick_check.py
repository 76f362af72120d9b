"""A first, cheaper check of records against the record schema: says "valid" or "not sure".

The validate stage asks three checkers in turn (``pipelines/validate.py``): this one (~14 µs a
Hugging Face record), then fastjsonschema's compiled validator (~20 µs), then jsonschema, which
words the error. A record this check calls valid is valid: it looks at the exact Python type of
each value (``type(v) in allowed``: a bool is no integer, a float no integer even if whole, a
``str`` subclass no string, all of which the schema could accept) and checks the constraints the
record schema uses (objects without extra keys, required keys, array items, unique items,
minimum, maximum, minLength, const, pattern). A part of the schema written with anything else is
handed to a fastjsonschema validator of that part, compiled when first needed. Keywords that do
not constrain (``description``, and ``format``, an annotation here as in jsonschema's default)
are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import fastjsonschema

QuickCheck = Callable[[Any], bool]

_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "boolean": (bool,), "null": (type(None),),
    "array": (list,), "object": (dict,),
}
_ANNOTATIONS = frozenset({"description", "format", "title", "$comment", "examples", "$schema", "$id"})
_HASHABLE = frozenset({str, int, bool, type(None)})  # uniqueItems is checked with a set
_ABSENT = object()  # a const the schema does not set, a property the object does not have
_ANY = {t for types in _PYTHON_TYPES.values() for t in types} | {float}  # items of an array without "items"


def compile_quick_check(schema: dict[str, Any]) -> QuickCheck:
    """``check(value)``: True only if ``value`` is valid against ``schema``; False when it is
    invalid or the check is not sure."""
    draft = {"$schema": schema["$schema"]} if "$schema" in schema else {}
    return _as_predicate(_check_of(schema, draft))


def _as_predicate(check: frozenset[type] | QuickCheck) -> QuickCheck:
    if isinstance(check, frozenset):
        return lambda value: type(value) in check
    return check


def _check_of(spec: dict[str, Any], draft: dict[str, Any]) -> frozenset[type] | QuickCheck:
    """The set of Python types a value may have when ``spec`` says only a type, else a predicate."""
    names = spec.get("type")
    names = [names] if isinstance(names, str) else names
    if not (isinstance(names, list) and names and all(n in _PYTHON_TYPES for n in names)):
        return _fastjsonschema_check(spec, draft)
    allowed = frozenset(t for n in names for t in _PYTHON_TYPES[n])
    rest = set(spec) - _ANNOTATIONS - {"type"}
    if not rest:
        return allowed
    nullable, kinds = "null" in names, set(names) - {"null"}
    if kinds == {"object"} and rest <= {"properties", "required", "additionalProperties"} \
            and spec.get("additionalProperties") is False:
        return _object_check(spec, draft, nullable)
    if kinds == {"array"} and rest <= {"items", "uniqueItems"}:
        return _array_check(spec, draft, nullable)
    if kinds == {"integer"} and rest <= {"minimum", "maximum"}:
        low, high = spec.get("minimum"), spec.get("maximum")
        return lambda v: (v is None and nullable) or (
            type(v) is int and (low is None or v >= low) and (high is None or v <= high))
    if kinds == {"string"} and rest <= {"pattern", "minLength", "const"}:
        # "$" in Python also matches before a final newline: a string with one is left to fastjsonschema.
        pattern = re.compile(spec["pattern"]) if "pattern" in spec else None
        shortest, const = spec.get("minLength", 0), spec.get("const", _ABSENT)
        return lambda v: (v is None and nullable) or (
            type(v) is str and len(v) >= shortest and (const is _ABSENT or v == const)
            and (pattern is None or ("\n" not in v and pattern.search(v) is not None)))
    return _fastjsonschema_check(spec, draft)


def _object_check(spec: dict[str, Any], draft: dict[str, Any], nullable: bool) -> QuickCheck:
    """The check of an object, written out as one function with a line per property: no loop
    over the properties and no lookup of each one's check (a Hugging Face record: ~16 → ~14 µs)."""
    checks = {key: _check_of(sub, draft) for key, sub in spec.get("properties", {}).items()}
    required = frozenset(spec.get("required", ()))
    names: dict[str, Any] = {"NULLABLE": nullable, "KNOWN": frozenset(checks), "REQUIRED": required,
                             "MISSING": _ABSENT}
    lines = ["def check(value):",
             "    if value is None:",
             "        return NULLABLE",
             "    if not isinstance(value, dict) or not (REQUIRED <= value.keys() <= KNOWN):",
             "        return False",
             "    get = value.get"]
    for at, (key, check) in enumerate(checks.items()):
        if isinstance(check, frozenset):
            names[f"T{at}"] = next(iter(check)) if len(check) == 1 else check
            valid = f"type(v) is T{at}" if len(check) == 1 else f"type(v) in T{at}"
        else:
            names[f"P{at}"] = check
            valid = f"P{at}(v)"
        present = "" if key in required else "v is not MISSING and "
        lines += [f"    v = get({key!r}, MISSING)", f"    if {present}not {valid}:", "        return False"]
    lines.append("    return True")
    exec("\n".join(lines), names)  # property names are written as literals (repr), never as code
    return names["check"]


def _array_check(spec: dict[str, Any], draft: dict[str, Any], nullable: bool) -> QuickCheck:
    items = _check_of(spec["items"], draft) if "items" in spec else frozenset(_ANY)
    unique = spec.get("uniqueItems", False)
    if unique and not (isinstance(items, frozenset) and items <= _HASHABLE):
        return _fastjsonschema_check(spec, draft)
    if isinstance(items, frozenset):
        return lambda v: (v is None and nullable) or (type(v) is list and (not v or (
            set(map(type, v)) <= items and (not unique or len(set(v)) == len(v)))))
    return lambda v: (v is None and nullable) or (type(v) is list and all(map(items, v)))


def _fastjsonschema_check(spec: dict[str, Any], draft: dict[str, Any]) -> QuickCheck:
    validate = None

    def check(value: Any) -> bool:
        nonlocal validate
        if validate is None:
            validate = fastjsonschema.compile({**draft, **spec}, use_formats=False)
        try:
            validate(value)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    return check
