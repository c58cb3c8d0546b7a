"""The policy pack Pulumi runs (`pulumi preview --policy-pack policies`): every rule of rules.py as
a CrossGuard policy, mandatory or advisory."""

import sys
from pathlib import Path

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ResourceValidationPolicy,
    StackValidationPolicy,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: `policies` as a package
from policies.rules import RULES, Resource, Rule


def _resource(args) -> Resource:
    return Resource(args.resource_type, args.name, args.props, bool(getattr(args.opts, "protect", False)))


def policy(rule: Rule):
    level = EnforcementLevel.MANDATORY if rule.mandatory else EnforcementLevel.ADVISORY
    if rule.stack:

        def validate_stack(args, report_violation):
            resources = [_resource(r) for r in args.resources]
            urns = {r.name: r.urn for r in args.resources}
            for name, message in rule.check(resources):
                report_violation(message, urns.get(name))

        return StackValidationPolicy(rule.name, rule.description, validate_stack, level)

    def validate(args, report_violation):
        for message in rule.check(_resource(args)):
            report_violation(message)

    return ResourceValidationPolicy(rule.name, rule.description, validate, level)


def policies() -> list:
    return [policy(rule) for rule in RULES]


if __name__ == "__main__":
    PolicyPack("rayplane", policies())  # serves the policies to the Pulumi engine
