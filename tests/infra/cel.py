"""The CEL rules (`x-kubernetes-validations`) of a CRD's schema, evaluated on an object the way the
API server does on create (k8s.io/apiextensions-apiserver, pkg/apiserver/schema/cel/validation.go):
after structural defaulting, each rule with `self` bound to the value at its node, for every node
present in the object. Transition rules (those naming `oldSelf`) run only on update: skipped here.
cel-python (`celpy`) evaluates them; Kubernetes' `isURL` library function is the one they need that
CEL's standard library lacks. Values of different types are unequal, as in the API server's cel-go
(heterogeneous equality: an int-or-string `port` may be compared with 0), where cel-python raises.
A key that is a CEL keyword is escaped as Kubernetes escapes it (`namespace` is `__namespace__`)."""

import copy
import functools
from urllib.parse import urlparse

import celpy
from celpy import celtypes

ENV = celpy.Environment()


def _is_url(value) -> celtypes.BoolType:
    """Kubernetes' `isURL`: an absolute URL, as Go's url.Parse would accept (scheme and host)."""
    url = urlparse(str(value))
    return celtypes.BoolType(bool(url.scheme and url.netloc))


def _equal(a, b) -> celtypes.BoolType:
    if type(a) is not type(b) and not all(
        isinstance(x, celtypes.IntType | celtypes.UintType | celtypes.DoubleType) for x in (a, b)
    ):
        return celtypes.BoolType(False)
    return celtypes.BoolType(a == b)


FUNCTIONS = {"isURL": _is_url, "_==_": _equal, "_!=_": lambda a, b: celtypes.BoolType(not _equal(a, b))}
# k8s.io/apiserver/pkg/cel/escaping.go: a declared property named after a CEL keyword is
# `__<keyword>__` (its escaping of '-', '.', '/' concerns names no pinned CRD's rule reads).
# fmt: off
RESERVED = {
    "namespace", "package", "in", "as", "break", "const", "continue", "else", "for", "function", "if",
    "import", "let", "loop", "return", "var", "void", "while", "false", "true", "null",
}
# fmt: on


def _cel_value(instance):
    if isinstance(instance, dict):
        return {f"__{k}__" if k in RESERVED else k: _cel_value(v) for k, v in instance.items()}
    if isinstance(instance, list):
        return [_cel_value(v) for v in instance]
    return instance


@functools.cache
def _program(rule: str) -> celpy.Runner:
    return ENV.program(ENV.compile(rule), functions=FUNCTIONS)


def defaulted(instance, schema: dict):
    """`instance` with the schema's `default`s filled in where a property is absent (what the API
    server stores, and what the rules see)."""
    instance = copy.deepcopy(instance)
    if isinstance(instance, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in instance and "default" in sub:
                instance[key] = copy.deepcopy(sub["default"])
            if key in instance:
                instance[key] = defaulted(instance[key], sub)
        if isinstance(schema.get("additionalProperties"), dict):
            for key in instance:
                instance[key] = defaulted(instance[key], schema["additionalProperties"])
    elif isinstance(instance, list) and "items" in schema:
        instance = [defaulted(item, schema["items"]) for item in instance]
    return instance


def violations(instance, schema: dict, at: str = "") -> list[str]:
    """`path: message` of every rule that does not hold on `instance` (already defaulted)."""
    found = []
    for rule in schema.get("x-kubernetes-validations", []):
        if "oldSelf" in rule["rule"]:
            continue
        result = _program(rule["rule"]).evaluate({"self": celpy.json_to_cel(_cel_value(instance))})
        if not (isinstance(result, celtypes.BoolType) and result):  # an error fails the rule too
            found.append(f"{at or '.'}: {rule.get('message', rule['rule'])}")
    if isinstance(instance, dict):
        for key, value in instance.items():
            if key in schema.get("properties", {}):
                found += violations(value, schema["properties"][key], f"{at}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                found += violations(value, schema["additionalProperties"], f"{at}.{key}")
    elif isinstance(instance, list) and "items" in schema:
        for i, item in enumerate(instance):
            found += violations(item, schema["items"], f"{at}[{i}]")
    return found
