"""The CEL rules (`x-kubernetes-validations`) of a CRD's schema, evaluated on an object the way the
API server does on create (k8s.io/apiextensions-apiserver, pkg/apiserver/schema/cel/validation.go):
after structural defaulting, each rule with `self` bound to the value at its node, for every node
present in the object. Transition rules (those naming `oldSelf`) run only on update: skipped here.
cel-python (`celpy`) evaluates them; Kubernetes' `isURL` library function is the one they need that
CEL's standard library lacks."""

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


@functools.cache
def _program(rule: str) -> celpy.Runner:
    return ENV.program(ENV.compile(rule), functions={"isURL": _is_url})


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
        result = _program(rule["rule"]).evaluate({"self": celpy.json_to_cel(instance)})
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
