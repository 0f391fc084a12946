"""The op registry: each op is declared once, and that declaration drives everything else.

An op is a plain NumPy function whose signature is its schema::

    @op("LeakyRelu", inputs=["X"], outputs=["Y"])
    def leaky_relu(x, *, alpha: float = 0.01):
        return np.where(x >= 0, x, x * alpha).astype(x.dtype)

- ``inputs``: names in order. ``"B?"`` is optional, ``"inputs*"`` variadic (last only), ``"@weight"`` a parameter
  that a node may own as a stored weight instead of receiving it as an edge (``"@bias?"``: optional parameter).
  The kernel receives them positionally; an omitted optional input arrives as ``None``; a variadic one as ``*args``.
- ``outputs``: names in order, same ``?``/``*`` suffixes. The kernel returns one array, or a tuple of arrays.
- Attributes are the kernel's keyword-only parameters. The annotation gives the type (``int``, ``float``, ``str``,
  ``list[int]``, ``list[float]``, ``list[str]``, ``Graph``, ``list[Graph]``; ``X | None`` for an attribute with no
  default), the default its default; no default means required.
- A keyword-only parameter named ``ctx`` receives the :class:`k5.runtime.RunContext` (control flow needs it).
- ``out_dtype``: the output dtype rule (default ``"same"``: the dtype of the first input), one for every output,
  or a tuple with one per declared output (a variadic last output repeats the last rule). A rule is a string of
  alternatives separated by ``|``, the first that resolves wins: ``"same"`` (the first input's dtype),
  ``"same:NAME"`` (input NAME's), ``"attr:NAME"`` (the dtype named by string attribute NAME), a k5 dtype name
  (``"bool"``, ``"int64"``...), ``"?"`` (not known before running: control flow); or a function
  ``(input dtypes, attributes) -> dtype name | None`` for what the strings cannot say. The tests check every rule
  against what the kernel returns on ONNX's test cases.
- ``decomposes_to``: only for k5's own ops, which ONNX lacks: how a converter writes it with standard ops (e.g.
  ``"MatMul+Add"``). Its presence is what marks an op as k5-only.

The same schema validates nodes (:meth:`OpSchema.check_node`), is what converters check against, generates
``docs/ops.md`` and parametrizes the tests. Registering the same (domain, op, since) twice is an error.

This module is a leaf: it holds the table and the decorator and imports no op family. The public entry point is
the package :mod:`k5.ops`, which imports every family eagerly; look ops up through it (``from k5.ops import
get_schema``) so that the table is complete.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from k5.errors import AttrError, K5Error, OpError, UnknownOpError
from k5.format.dtypes import dtype_of
from k5.format.model import DEFAULT_DOMAIN, Graph, Node

__all__ = [
    "ATTR_TYPES",
    "OPSET_VERSION",
    "REQUIRED",
    "AttrSpec",
    "DtypeFn",
    "DtypeRule",
    "InputSpec",
    "OpSchema",
    "OutputSpec",
    "all_schemas",
    "find_schema",
    "get_schema",
    "op",
    "qualname",
]

#: The newest version of the default (``k5``) op set that this release implements.
OPSET_VERSION = 1


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

#: attribute type name -> Python annotation that declares it
ATTR_TYPES: dict[str, Any] = {
    "int": int,
    "float": float,
    "string": str,
    "ints": list[int],
    "floats": list[float],
    "strings": list[str],
    "graph": Graph,
    "graphs": list[Graph],
}


@dataclass(frozen=True)
class InputSpec:
    name: str
    optional: bool = False
    variadic: bool = False
    param: bool = False  # may be owned by the node as a stored weight

    @classmethod
    def parse(cls, text: str) -> InputSpec:
        param = text.startswith("@")
        text = text.lstrip("@")
        if text.endswith("?"):
            return cls(text[:-1], optional=True, param=param)
        if text.endswith("*"):
            return cls(text[:-1], optional=True, variadic=True, param=param)
        return cls(text, param=param)

    def __str__(self) -> str:
        return ("@" if self.param else "") + self.name + ("*" if self.variadic else "?" if self.optional else "")


@dataclass(frozen=True)
class OutputSpec:
    name: str
    optional: bool = False
    variadic: bool = False

    @classmethod
    def parse(cls, text: str) -> OutputSpec:
        if text.endswith("?"):
            return cls(text[:-1], optional=True)
        if text.endswith("*"):
            return cls(text[:-1], optional=True, variadic=True)
        return cls(text)

    def __str__(self) -> str:
        return self.name + ("*" if self.variadic else "?" if self.optional else "")


@dataclass(frozen=True)
class AttrSpec:
    name: str
    type: str  # a key of ATTR_TYPES
    default: Any = REQUIRED  # REQUIRED, None (optional, no default), or the default value

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


#: a computed output dtype rule: (input dtypes, attributes with defaults) -> k5 dtype name, or None when unknown
DtypeFn = Callable[[Sequence["str | None"], Mapping[str, Any]], "str | None"]
#: an output dtype rule as declared (see the module docstring)
DtypeRule = str | DtypeFn


@dataclass(frozen=True)
class OpSchema:
    name: str
    domain: str
    since: int
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]
    attrs: dict[str, AttrSpec]
    kernel: Callable[..., Any] = field(repr=False)
    doc: str = ""
    family: str = ""  # the module that declares it, e.g. "elementwise"
    wants_ctx: bool = False
    out_dtype: tuple[DtypeRule, ...] = ("same",)  # one per declared output (the last repeats)
    decomposes_to: str = ""  # k5's own ops only: how converters write it with standard (ONNX) ops

    @property
    def qualname(self) -> str:
        return qualname(self.name, self.domain)

    @property
    def k5_only(self) -> bool:
        """An op of k5's own, which ONNX lacks (converters decompose it)."""
        return bool(self.decomposes_to)

    # -- output dtypes -----------------------------------------------------------------------------------------
    def output_dtypes(
        self, input_dtypes: Sequence[str | None], attrs: Mapping[str, Any], n_outputs: int | None = None
    ) -> list[str | None]:
        """The dtype of each output given the inputs' (None: unknown or absent) and the node's attributes (the
        schema's defaults fill the missing ones); None where the rule cannot tell."""
        full = {n: a.default for n, a in self.attrs.items() if not a.required} | dict(attrs)
        count = len(self.outputs) if n_outputs is None else n_outputs
        rules = self.out_dtype
        return [_apply_rule(self, rules[min(i, len(rules) - 1)], input_dtypes, full) for i in range(count)]

    def out_dtype_text(self) -> str:
        """The output dtype rules as docs show them."""

        def text(rule: DtypeRule) -> str:
            if isinstance(rule, str):
                return rule
            return inspect.cleandoc(rule.__doc__ or rule.__name__).split("\n")[0]

        if len(self.out_dtype) == 1:
            return text(self.out_dtype[0])
        return "; ".join(f"{o.name}: {text(r)}" for o, r in zip(self.outputs, self.out_dtype, strict=False))

    @property
    def params(self) -> dict[str, InputSpec]:
        return {i.name: i for i in self.inputs if i.param}

    @property
    def min_inputs(self) -> int:
        required = [i for i, s in enumerate(self.inputs) if not s.optional]
        return required[-1] + 1 if required else 0

    @property
    def max_inputs(self) -> int | None:
        return None if self.inputs and self.inputs[-1].variadic else len(self.inputs)

    @property
    def max_outputs(self) -> int | None:
        return None if self.outputs and self.outputs[-1].variadic else len(self.outputs)

    @property
    def min_outputs(self) -> int:
        required = [i for i, s in enumerate(self.outputs) if not s.optional]
        return required[-1] + 1 if required else 0

    # -- validation --------------------------------------------------------------------------------------------
    def check_node(self, node: Node) -> None:
        """Raise a :class:`K5Error` naming the node when it does not fit this schema."""
        where = node.label
        n_in = len(node.inputs)
        if self.max_inputs is not None and n_in > self.max_inputs:
            raise OpError(
                f"expects at most {self.max_inputs} inputs ({', '.join(map(str, self.inputs))}). "
                f"Received: {n_in} inputs {node.inputs}",
                where=where,
            )
        for name in node.weights:
            spec = self.params.get(name)
            if spec is None:
                allowed = ", ".join(self.params) or "none"
                raise OpError(f"has a weight {name!r} that the op does not take (parameters: {allowed})", where=where)
            idx = self.inputs.index(spec)
            if idx < n_in and node.inputs[idx]:
                raise OpError(
                    f"parameter {name!r} is given both as input {node.inputs[idx]!r} and as a stored weight",
                    where=where,
                )
        for i, spec in enumerate(self.inputs):
            if spec.optional:
                continue
            given = i < n_in and node.inputs[i] != ""
            if not given and spec.name not in node.weights:
                how = " (as an input or a stored weight)" if spec.param else ""
                raise OpError(f"missing required input {i} {spec.name!r}{how}", where=where)
        n_out = len(node.outputs)
        if n_out < max(self.min_outputs, 1 if self.outputs else 0) or (
            self.max_outputs is not None and n_out > self.max_outputs
        ):
            raise OpError(
                f"expects {self.min_outputs}..{self.max_outputs if self.max_outputs is not None else 'n'} outputs "
                f"({', '.join(map(str, self.outputs))}). Received: {n_out} outputs {node.outputs}",
                where=where,
            )
        self.resolve_attrs(node)

    def resolve_attrs(self, node: Node) -> dict[str, Any]:
        """The node's attributes checked against the schema and completed with defaults."""
        out: dict[str, Any] = {}
        for name, value in node.attrs.items():
            spec = self.attrs.get(name)
            if spec is None:
                known = ", ".join(self.attrs) or "none"
                raise AttrError(f"unknown attribute {name!r} (known: {known})", where=node.label)
            out[name] = coerce_attr(spec, value, where=node.label)
        for name, spec in self.attrs.items():
            if name in out:
                continue
            if spec.required:
                raise AttrError(f"missing required attribute {name!r} of type {spec.type}", where=node.label)
            out[name] = spec.default
        return out


def coerce_attr(spec: AttrSpec, value: Any, *, where: str) -> Any:
    """Check ``value`` against an attribute's declared type; ints are accepted where floats are expected."""
    t = spec.type

    def bad() -> AttrError:
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return AttrError(f"attribute {spec.name!r} expects {t}. Received: {spec.name}={shown}", where=where)

    if value is None:
        if spec.default is None:
            return None
        raise bad()
    if t == "int":
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise bad()
        return int(value)
    if t == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise bad()
        return float(value)
    if t == "string":
        if not isinstance(value, str):
            raise bad()
        return value
    if t == "graph":
        if not isinstance(value, Graph):
            raise bad()
        return value
    if not isinstance(value, (list, tuple)):
        raise bad()
    if t == "ints":
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
            raise bad()
        return [int(v) for v in value]
    if t == "floats":
        if not all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in value):
            raise bad()
        return [float(v) for v in value]
    if t == "strings":
        if not all(isinstance(v, str) for v in value):
            raise bad()
        return list(value)
    if t == "graphs":
        if not all(isinstance(v, Graph) for v in value):
            raise bad()
        return list(value)
    raise bad()  # pragma: no cover - ATTR_TYPES is closed


def qualname(op_name: str, domain: str = DEFAULT_DOMAIN) -> str:
    """An op's name qualified by its domain when that is not the default one: ``Conv``, ``com.acme.Frobnicate``."""
    return op_name if domain == DEFAULT_DOMAIN else f"{domain}.{op_name}"


# --- output dtype rules -----------------------------------------------------------------------------------------
def _apply_rule(
    schema: OpSchema, rule: DtypeRule, input_dtypes: Sequence[str | None], attrs: Mapping[str, Any]
) -> str | None:
    if not isinstance(rule, str):
        return rule(input_dtypes, attrs)
    for alt in rule.split("|"):
        kind, _, arg = alt.partition(":")
        found: str | None = None
        if kind == "same":
            index = next(i for i, s in enumerate(schema.inputs) if s.name == arg) if arg else 0
            found = input_dtypes[index] if index < len(input_dtypes) else None
        elif kind == "attr":
            value = attrs.get(arg)
            found = value if isinstance(value, str) and value else None
        elif kind != "?":
            found = alt
        if found is not None:
            return found
    return None


def _check_rule(rule: DtypeRule, inputs: Sequence[InputSpec], attrs: Mapping[str, AttrSpec], where: str) -> None:
    if not isinstance(rule, str):
        if not callable(rule):
            raise TypeError(f"{where}: out_dtype rule {rule!r} is neither a string nor a function")
        return
    names = [s.name for s in inputs]
    for alt in rule.split("|"):
        kind, _, arg = alt.partition(":")
        if kind == "same":
            if not (arg in names if arg else names):
                raise TypeError(f"{where}: out_dtype {rule!r} names input {arg or 0!r}, which the op does not have")
        elif kind == "attr":
            spec = attrs.get(arg)
            if spec is None or spec.type != "string":
                raise TypeError(f"{where}: out_dtype {rule!r} needs a string attribute {arg!r}")
        elif alt != "?":
            try:
                dtype_of(alt)
            except K5Error:
                raise TypeError(f"{where}: out_dtype {rule!r}: {alt!r} is not a k5 dtype") from None


# --- the registry -----------------------------------------------------------------------------------------------
_REGISTRY: dict[tuple[str, str], list[OpSchema]] = {}


def _attr_type(annotation: Any, where: str) -> tuple[str, bool]:
    """Map a kernel annotation to (attr type name, allows None)."""
    allows_none = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        allows_none = len(args) != len(typing.get_args(annotation))
        if len(args) != 1:
            raise TypeError(f"{where}: attribute annotation {annotation} must be one type, optionally | None")
        annotation = args[0]
    for name, ann in ATTR_TYPES.items():
        if annotation == ann:
            return name, allows_none
    raise TypeError(f"{where}: unsupported attribute annotation {annotation!r}; use one of {list(ATTR_TYPES.values())}")


def op(
    name: str,
    *,
    inputs: Sequence[str],
    outputs: Sequence[str],
    since: int = 1,
    domain: str = DEFAULT_DOMAIN,
    doc: str | None = None,
    out_dtype: DtypeRule | Sequence[DtypeRule] = "same",
    decomposes_to: str = "",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare an op; see the module docstring."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        where = f"op {name} ({fn.__module__}.{fn.__qualname__})"
        in_specs = tuple(InputSpec.parse(s) for s in inputs)
        out_specs = tuple(OutputSpec.parse(s) for s in outputs)
        for specs in (in_specs, out_specs):
            if any(s.variadic for s in specs[:-1]):
                raise TypeError(f"{where}: only the last input/output may be variadic")
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn)
        attrs: dict[str, AttrSpec] = {}
        wants_ctx = False
        positional = 0
        has_varargs = False
        for p in sig.parameters.values():
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                positional += 1
            elif p.kind == p.VAR_POSITIONAL:
                has_varargs = True
            elif p.kind == p.KEYWORD_ONLY:
                if p.name == "ctx":
                    wants_ctx = True
                    continue
                if p.name not in hints:
                    raise TypeError(f"{where}: attribute {p.name!r} needs a type annotation")
                type_name, allows_none = _attr_type(hints[p.name], where)
                default = REQUIRED if p.default is p.empty else p.default
                if default is None and not allows_none:
                    raise TypeError(f"{where}: attribute {p.name!r} defaults to None but is not annotated '| None'")
                attrs[p.name] = AttrSpec(p.name, type_name, default)
        n_fixed = len(in_specs) - (1 if in_specs and in_specs[-1].variadic else 0)
        if positional != n_fixed or has_varargs != bool(in_specs and in_specs[-1].variadic):
            raise TypeError(
                f"{where}: kernel takes {positional} positional args, schema declares {len(in_specs)} inputs"
            )
        rules: tuple[DtypeRule, ...] = (
            (out_dtype,) if isinstance(out_dtype, str) or callable(out_dtype) else tuple(out_dtype)
        )
        if not rules or len(rules) > max(len(out_specs), 1) or (1 < len(rules) < len(out_specs)):
            raise TypeError(f"{where}: out_dtype gives {len(rules)} rules for {len(out_specs)} outputs")
        for rule in rules:
            _check_rule(rule, in_specs, attrs, where)
        schema = OpSchema(
            name=name,
            domain=domain,
            since=since,
            inputs=in_specs,
            outputs=out_specs,
            attrs=attrs,
            kernel=fn,
            doc=inspect.cleandoc(doc or fn.__doc__ or ""),
            family=fn.__module__.rsplit(".", 1)[-1],
            wants_ctx=wants_ctx,
            out_dtype=rules,
            decomposes_to=decomposes_to,
        )
        versions = _REGISTRY.setdefault((domain, name), [])
        if any(s.since == since for s in versions):
            raise ValueError(f"op {schema.qualname} version {since} is already registered")
        versions.append(schema)
        versions.sort(key=lambda s: s.since)
        fn.schema = schema  # type: ignore[attr-defined]
        return fn

    return register


def find_schema(op_name: str, domain: str = DEFAULT_DOMAIN, version: int | None = None) -> OpSchema | None:
    """The newest schema of ``op_name`` whose ``since`` is <= ``version`` (the newest overall if None)."""
    versions = _REGISTRY.get((domain, op_name))
    if not versions:
        return None
    if version is None:
        return versions[-1]
    fitting = [s for s in versions if s.since <= version]
    return fitting[-1] if fitting else None


def get_schema(op_name: str, domain: str = DEFAULT_DOMAIN, version: int | None = None, *, where: str = "") -> OpSchema:
    """Like :func:`find_schema`, but raises :class:`UnknownOpError` with a helpful message."""
    schema = find_schema(op_name, domain, version)
    if schema is not None:
        return schema
    versions = _REGISTRY.get((domain, op_name))
    qual = qualname(op_name, domain)
    if versions:
        msg = f"op {qual} needs op set {domain} >= {versions[0].since}; the file declares version {version}"
    elif domain != DEFAULT_DOMAIN:
        msg = f"op {qual} is in custom domain {domain!r}, which has no implementation registered here"
    else:
        msg = f"unknown op {qual!r} (not in the k5 op set v{OPSET_VERSION}; see docs/ops.md)"
    raise UnknownOpError(msg, where=where or None)


def all_schemas() -> Iterator[OpSchema]:
    """The newest schema of every registered op, sorted by domain and name."""
    for key in sorted(_REGISTRY):
        yield _REGISTRY[key][-1]
