"""The JSON schema an LLM plan must follow, built from the registry and the inventory.

The schema fences the model in: ``function`` is an enum of the registry
functions offered for this question (allowed for the intent, runnable on the
targets' OS), ``targets`` an enum of the resolved minion ids, and each
function's ``args`` an object with exactly that function's registry
arguments, typed (no other key). Providers enforce it as a grammar (llama.cpp),
structured output (OpenAI) or a forced tool call (Anthropic, compatible servers).

``validate`` checks a document against the subset of JSON Schema used here,
so a provider that ignores the schema is caught before the policy even runs.
"""

from __future__ import annotations

from typing import Any

from salt_ext.registry import ArgSpec, FunctionSpec

PLAN_TOOL = "submit_plan"
MAX_STEPS = 4

_JSON_TYPES = {"str": {"type": "string"}, "path": {"type": "string"}, "int": {"type": "integer"},
               "float": {"type": "number"}, "bool": {"type": "boolean"},
               "list": {"type": "array", "items": {"type": "string"}}, "dict": {"type": "object"}}


def arg_schema(arg: ArgSpec) -> dict[str, Any]:
    types = [_JSON_TYPES[t] for t in arg.type.split("|") if t in _JSON_TYPES]
    if not types:
        return {"type": "string"}
    return dict(types[0]) if len(types) == 1 else {"anyOf": types}


def llm_args(spec: FunctionSpec) -> list[ArgSpec]:
    """The arguments a model may fill: none for a change (the deterministic stage binds those),
    and never a free-form mapping (``pillar=...``: nothing to constrain it, and a small model
    rambles there until it runs out of tokens)."""
    if spec.safety != "read":
        return []
    return [a for a in spec.args.values() if a.type.split("|") != ["dict"]]


def args_schema(spec: FunctionSpec) -> dict[str, Any]:
    allowed = llm_args(spec)
    props = {a.name: arg_schema(a) for a in allowed}
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    required = [a.name for a in allowed if a.required]
    if required:
        out["required"] = required
    return out


def plan_schema(functions: list[FunctionSpec], targets: list[str], max_steps: int = MAX_STEPS) -> dict[str, Any]:
    """Schema of ``{"steps": [{"function", "targets", "args"}]}`` over these functions and targets."""
    step_variants = []
    for spec in functions:
        props: dict[str, Any] = {"function": {"type": "string", "enum": [spec.name]}}
        if len(targets) > 1:
            props["targets"] = {"type": "array", "items": {"type": "string", "enum": list(targets)}}
        props["args"] = args_schema(spec)
        step_variants.append({"type": "object", "properties": props, "required": ["function", "args"],
                              "additionalProperties": False})
    step = step_variants[0] if len(step_variants) == 1 else {"anyOf": step_variants}
    return {"type": "object", "properties": {"steps": {"type": "array", "items": step, "minItems": 1,
                                                       "maxItems": max_steps}},
            "required": ["steps"], "additionalProperties": False}


def validate(doc: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Where ``doc`` breaks ``schema`` (type, enum, required, additionalProperties, items, anyOf, min/maxItems)."""
    errors: list[str] = []
    if "anyOf" in schema:
        results = [validate(doc, s, path) for s in schema["anyOf"]]
        if all(results):
            best = min(results, key=len)
            return [f"{path}: matches no alternative ({best[0]})"]
        return []
    expected = schema.get("type")
    checks = {"object": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list),
              "string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
              "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)}
    if expected and not checks[expected](doc):
        return [f"{path}: expected {expected}, got {type(doc).__name__}"]
    if "enum" in schema and doc not in schema["enum"]:
        return [f"{path}: {doc!r} is not one of {schema['enum']}"]
    if isinstance(doc, dict):
        props = schema.get("properties") or {}
        for key in schema.get("required") or []:
            if key not in doc:
                errors.append(f"{path}: missing {key!r}")
        for key, value in doc.items():
            if key in props:
                errors += validate(value, props[key], f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{path}: unexpected key {key!r}")
    if isinstance(doc, list):
        if "minItems" in schema and len(doc) < schema["minItems"]:
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(doc) > schema["maxItems"]:
            errors.append(f"{path}: more than {schema['maxItems']} items")
        for i, item in enumerate(doc):
            errors += validate(item, schema.get("items") or {}, f"{path}[{i}]")
    return errors
