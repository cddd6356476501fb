"""A small IAM policy evaluator: enough of IAM's rules to prove what a role may do.

Why our own: the permission tests ask "would IAM allow action A on resource R with these request
context keys?" for hundreds of pairs, offline. No well-kept PyPI library answers that (moto's
access control ignores conditions; the IAM policy simulator is an AWS API call), and the subset of
IAM these policies use is small enough to read in one sitting:

- an explicit Deny in any statement wins; otherwise any Allow allows; otherwise implicit deny;
- ``Action``/``NotAction`` match case-insensitively with ``*`` and ``?`` wildcards;
- ``Resource``/``NotResource`` match case-sensitively with ``*`` and ``?``;
- ``Condition`` operators ``StringEquals``, ``StringNotEquals``, ``StringLike``, ``ArnEquals``,
  ``ArnLike`` and ``Bool``: every operator and every key in a statement must hold; several
  values for a key mean "any of them"; a key missing from the request fails the operator (no
  ``...IfExists`` forms are used here). Anything else raises, so a policy using an operator this
  evaluator does not know cannot pass silently.

A role's effective permissions are its identity policies intersected with its permissions
boundary (when it has one): :func:`allowed_by_role` checks both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Statement = Mapping[str, Any]


@dataclass(frozen=True)
class Request:
    """One API call as IAM sees it: the action, the resource ARN and the request context."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _wildcard(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    """IAM wildcards: ``*`` any run of characters, ``?`` one character (nothing else special)."""
    regex = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    )
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.fullmatch(regex, value, flags | re.DOTALL) is not None


def _condition_holds(operator: str, tests: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    for key, expected in tests.items():
        # Condition keys are case-insensitive; look the key up ignoring case.
        actual = next((v for k, v in context.items() if k.lower() == key.lower()), None)
        values = [str(v) for v in as_list(expected)]
        if operator == "StringNotEquals":
            if actual is not None and actual in values:
                return False
            continue
        if actual is None:
            return False
        if operator in ("StringEquals", "ArnEquals"):
            matched = actual in values
        elif operator in ("StringLike", "ArnLike"):
            matched = any(_wildcard(v, actual, case_sensitive=True) for v in values)
        elif operator == "Bool":
            matched = actual.lower() in [v.lower() for v in values]
        else:
            raise NotImplementedError(f"condition operator {operator}")
        if not matched:
            return False
    return True


def _element_matches(statement: Statement, element: str, value: str, case_sensitive: bool) -> bool:
    """``Action``/``Resource`` matches the value, or ``NotAction``/``NotResource`` does not."""
    listed = element in statement
    patterns = as_list(statement[element] if listed else statement[f"Not{element}"])
    matched = any(_wildcard(p, value, case_sensitive=case_sensitive) for p in patterns)
    return matched if listed else not matched


def statement_applies(statement: Statement, request: Request) -> bool:
    """Whether the statement's action, resource and conditions all match the request."""
    if not (
        _element_matches(statement, "Action", request.action, case_sensitive=False)
        and _element_matches(statement, "Resource", request.resource, case_sensitive=True)
    ):
        return False
    conditions = statement.get("Condition") or {}
    return all(_condition_holds(op, tests, request.context) for op, tests in conditions.items())


def decision(statements: Sequence[Statement], request: Request) -> str:
    """``"Deny"`` (explicit), ``"Allow"``, or ``"ImplicitDeny"``."""
    matching = [s for s in statements if statement_applies(s, request)]
    if any(s["Effect"] == "Deny" for s in matching):
        return "Deny"
    if any(s["Effect"] == "Allow" for s in matching):
        return "Allow"
    return "ImplicitDeny"


def allowed_by_role(
    identity: Sequence[Statement], boundary: Sequence[Statement] | None, request: Request
) -> bool:
    """Identity policies allow it and, when the role has a permissions boundary, so does that."""
    if decision(identity, request) != "Allow":
        return False
    return boundary is None or decision(boundary, request) == "Allow"


def _self_test() -> None:
    """Tiny sanity checks, run on import so a broken evaluator cannot make every test pass."""
    allow = {"Effect": "Allow", "Action": "ec2:Delete*", "Resource": "arn:aws:ec2:*:1:vpc/*"}
    assert decision([allow], Request("EC2:DeleteVpc", "arn:aws:ec2:r:1:vpc/v")) == "Allow"
    assert decision([allow], Request("ec2:CreateVpc", "arn:aws:ec2:r:1:vpc/v")) == "ImplicitDeny"
    deny = {"Effect": "Deny", "NotAction": "ec2:DeleteVpc", "Resource": "*"}
    assert decision([allow, deny], Request("ec2:DeleteSubnet", "arn:aws:ec2:r:1:vpc/v")) == "Deny"
    tagged = {**allow, "Condition": {"StringEquals": {"aws:ResourceTag/k": "v"}}}
    assert decision([tagged], Request("ec2:DeleteVpc", "arn:aws:ec2:r:1:vpc/v")) != "Allow"
    ok = Request("ec2:DeleteVpc", "arn:aws:ec2:r:1:vpc/v", {"aws:resourcetag/k": "v"})
    assert decision([tagged], ok) == "Allow"


_self_test()
