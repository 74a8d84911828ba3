"""Field-by-field validation of an untrusted mapping against a dataclass's annotations.

Artefacts a user may edit (plan.yaml above all) are data: before a value reaches a dataclass, and
from there an exporter, :func:`check_record` checks every key against the dataclass's fields and
every value against the field's annotation, and optional per-field rules for physical ranges.

Conventions (what each annotation admits):

* ``int``: a real int, never a bool (YAML ``true``), never a float or a string;
* ``float``: an int or a float, finite, never a bool; the value is kept as written (an int stays an
  int, so a valid artefact re-serialises byte-identically);
* ``str``: a string without control characters (so it cannot leave a one-line comment or a
  generated line), at most :data:`MAX_STR` characters; ``bool``: ``true``/``false`` only;
* ``X | None``; ``list[X]``; ``tuple[X, ...]`` or ``tuple[X, X]`` (read from a list); ``dict[str, X]``
  (keys are strings); ``Any``: a :func:`scalar` (JSON number, string, bool or null); ``object``:
  anything (the caller checks it, e.g. the items of a list of records).

Rules (``rules={field: rule}``): ``"positive"`` (> 0), ``"nonneg"`` (>= 0), ``"open_fraction"``
(strictly between 0 and 1, e.g. Adam's betas, applied to each item of a list), ``"fraction"``
(0 < x <= 1, e.g. MFU), or a tuple of allowed values. Every error is a UserError
"<where>.<field> ...; <fix>", one line (values are shown with ``repr``, truncated).
"""
from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from typing import Any, Union

from planner.errors import UserError

#: Longest string accepted in a checked record (paths, sources, warnings are far shorter).
MAX_STR = 4096
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


_UNSIGNED_EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE]\d+")


def show(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters (one line: repr escapes newlines)."""
    r = repr(value)
    return r if len(r) <= limit else r[:limit] + "..."


def scalar(value: Any, where: str, fix: str) -> Any:
    """A JSON scalar (finite number, one-line string, bool, null), else a UserError."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return check_value(value, float, where, fix)
    if isinstance(value, str):
        return check_value(value, str, where, fix)
    raise UserError(f"{where} must be a number, string, true/false or null, got {show(value)}; {fix}")


def _check_number(value: Any, tp: type, where: str, fix: str) -> Any:
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{where} must be an integer, got {show(value)}; {fix}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{where} must be a number, got {show(value)}{_yaml11_hint(value)}; {fix}")
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{where} must be a finite number, got {show(value)}; {fix}")
    return value


def _yaml11_hint(value: Any) -> str:
    """YAML 1.1 (PyYAML) reads ``1e11`` and ``2.0e12`` as text: only a signed exponent makes a float."""
    if isinstance(value, str) and _UNSIGNED_EXPONENT.fullmatch(value.strip()):
        return f" (YAML reads an exponent without a sign as text: write {value.strip().replace('e', 'e+').replace('E', 'E+')})"
    return ""


def _check_str(value: Any, where: str, fix: str) -> str:
    if not isinstance(value, str):
        raise UserError(f"{where} must be a string, got {show(value)}; {fix}")
    if _CONTROL.search(value):
        raise UserError(f"{where} must be one line without control characters, got {show(value)}; {fix}")
    if len(value) > MAX_STR:
        raise UserError(f"{where} is longer than {MAX_STR} characters; {fix}")
    return value


def _check_container(value: Any, tp: Any, where: str, fix: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where} must be a list, got {show(value)}; {fix}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise UserError(f"{where} must be a list of {len(args)} items, got {show(value)}; {fix}")
            return [check_value(v, a, f"{where}[{i}]", fix) for i, (v, a) in enumerate(zip(value, args))]
        item = args[0] if args else Any
        return [check_value(v, item, f"{where}[{i}]", fix) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where} must be a mapping, got {show(value)}; {fix}")
        item = args[1] if len(args) == 2 else Any
        for k, v in value.items():
            _check_str(k, f"{where} key", fix)
            check_value(v, item, f"{where}.{k}", fix)
        return value
    raise TypeError(f"schema: unsupported annotation {tp!r}")  # a programming error, not bad input


def _shaped_like(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp) or tp
    return isinstance(origin, type) and isinstance(value, origin)


def check_value(value: Any, tp: Any, where: str, fix: str) -> Any:
    """``value`` checked against annotation ``tp`` (module docstring); returns it unchanged."""
    if tp is Any:
        return scalar(value, where, fix)
    if tp is object:  # checked by the caller
        return value
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None:
            if type(None) in options:
                return None
            raise UserError(f"{where} must be set, got null; {fix}")
        rest = [o for o in options if o is not type(None)]
        # report the error of the option shaped like the value (a list for a list, ...)
        rest.sort(key=lambda o: not _shaped_like(value, o))
        errors = []
        for o in rest:
            try:
                return check_value(value, o, where, fix)
            except UserError as e:
                errors.append(e)
        raise errors[0]
    if tp in (int, float):
        return _check_number(value, tp, where, fix)
    if tp is str:
        return _check_str(value, where, fix)
    if tp is bool:
        if not isinstance(value, bool):
            raise UserError(f"{where} must be true or false, got {show(value)}; {fix}")
        return value
    return _check_container(value, tp, where, fix)


def check_rule(value: Any, rule: Any, where: str, fix: str) -> None:
    """Range or choice ``rule`` (module docstring) on a checked value; None passes (optional fields)."""
    if value is None:
        return
    if isinstance(rule, tuple):
        if value not in rule:
            raise UserError(f"{where} must be one of {', '.join(map(str, rule))}, got {show(value)}; {fix}")
        return
    for v in value if isinstance(value, list) else [value]:
        ok = {"positive": lambda x: x > 0, "nonneg": lambda x: x >= 0, "open_fraction": lambda x: 0 < x < 1,
              "fraction": lambda x: 0 < x <= 1}[rule](v)
        if not ok:
            what = {"positive": "> 0", "nonneg": ">= 0", "open_fraction": "strictly between 0 and 1",
                    "fraction": "in (0, 1]"}[rule]
            raise UserError(f"{where} must be {what}, got {show(value)}; {fix}")


def check_record(cls: type, d: Any, where: str, *, fix: str, rules: dict[str, Any] | None = None,
                 ignored: tuple[str, ...] = (), fields: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The keys of mapping ``d`` that are fields of dataclass ``cls``, each checked (module docstring).

    Unknown keys (beyond ``ignored``, derived values the reader recomputes; they must still be
    scalars) and missing required fields are errors. ``fields`` restricts the check to those
    fields (the others are the caller's). Returns ``{field: value}`` with values unchanged.
    """
    if not isinstance(d, dict):
        raise UserError(f"{where} must be a mapping, got {show(d)}; {fix}")
    hints = typing.get_type_hints(cls)
    flds = [f for f in dataclasses.fields(cls) if fields is None or f.name in fields]
    names = {f.name for f in flds}
    unknown = sorted(str(k) for k in set(d) - names - set(ignored))
    if unknown:
        raise UserError(f"unknown {where} fields {unknown} (known: {sorted(names)}); {fix}")
    missing = [f.name for f in flds if f.name not in d and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise UserError(f"{where} lacks {missing}; {fix}")
    for k in ignored:
        if k in d:
            scalar(d[k], f"{where}.{k}", fix)
    out = {}
    for f in flds:
        if f.name in d:
            out[f.name] = check_value(d[f.name], hints[f.name], f"{where}.{f.name}", fix)
            if rules and f.name in rules:
                check_rule(out[f.name], rules[f.name], f"{where}.{f.name}", fix)
    return {k: d[k] for k in out}
