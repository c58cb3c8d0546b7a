"""The rayplane CrossGuard policy pack: `pulumi preview --policy-pack policies` (rules in rules.py)."""
