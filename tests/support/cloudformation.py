"""Reading CloudFormation templates, and evaluating the intrinsic functions they use.

Every template test reads ``infra/*.yaml`` through :func:`load_template`, which parses with
cfn-lint's decoder: the parser of the validator the generated CI runs, so the tests see exactly
what cfn-lint sees. Short-form tags arrive in their long form (``!Ref X`` as ``{"Ref": "X"}``,
``!GetAtt A.B`` as ``{"Fn::GetAtt": ["A", "B"]}``), and a duplicate key, which PyYAML would
silently resolve to the last value, fails the load.

Why an evaluator: the decisive values of the app stack (the Bedrock resource ARNs,
BEDROCK_MODEL_IDS, the subnets each option picks, the Rules that reject bad parameter
combinations) are computed by intrinsic functions at deploy time. Reading the YAML proves little;
evaluating it for concrete parameter values proves what CloudFormation will send to IAM and ECS.
Only the functions the templates use are supported, and anything else fails loudly rather than
passing silently.

Resources are not created, so ``Ref``/``Fn::GetAtt`` on a resource evaluate to a placeholder
``<Name>`` / ``<Name.Attribute>`` that tests compare against.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

PSEUDO = {
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/stack/0000",
    "AWS::StackName": "stack",
    "AWS::URLSuffix": "amazonaws.com",
}
NO_VALUE = object()
SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


def plain(node: Any) -> Any:
    """cfn-lint's decoded nodes (which carry line marks) as plain dicts, lists and strings, so
    tests compare them with ``==`` and can write them back with ``yaml.safe_dump``."""
    if isinstance(node, dict):
        return {str(key): plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [plain(item) for item in node]
    if isinstance(node, str):
        return str(node)
    return node


def load_template(path: Path) -> dict[str, Any]:
    """Parse a CloudFormation template as plain data, intrinsic functions in their long form."""
    template, matches = decode(str(path))
    assert not matches, f"{path} does not parse: {matches}"
    return plain(template)


class Evaluator:
    """Evaluate intrinsic functions for one set of parameter values and a region."""

    def __init__(
        self, template: dict[str, Any], overrides: dict[str, str] | None = None, **pseudo: str
    ) -> None:
        self.template = template
        self.pseudo = {**PSEUDO, **{f"AWS::{k}": v for k, v in pseudo.items()}}
        self.params: dict[str, str] = {
            name: str(spec["Default"])
            for name, spec in template.get("Parameters", {}).items()
            if "Default" in spec
        }
        self.params.update(overrides or {})
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.value(self.template["Conditions"][name]))
        return self._conditions[name]

    def exists(self, resource: str) -> bool:
        """Whether a resource (or output) is created under these parameter values."""
        spec = self.template["Resources"][resource]
        return "Condition" not in spec or self.condition(spec["Condition"])

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        if name in self.template.get("Resources", {}):
            assert self.exists(name), f"Ref to {name}, which these parameters do not create"
            return f"<{name}>"
        raise KeyError(f"unknown Ref {name}")

    def sub(self, text: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and name.split(".", 1)[0] in self.template.get("Resources", {}):
                return f"<{name}>"
            return str(self.ref(name))

        return SUB_VARIABLE.sub(replace, text)

    def value(self, node: Any) -> Any:
        """Evaluate a template node: one branch per intrinsic function."""
        if isinstance(node, list):
            items = [self.value(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) != 1 or not next(iter(node)).startswith(("Fn::", "Ref", "Condition")):
            items = {key: self.value(item) for key, item in node.items()}
            return {key: item for key, item in items.items() if item is not NO_VALUE}
        ((function, argument),) = node.items()
        if function == "Ref":
            return self.ref(argument)
        if function == "Condition":
            return self.condition(argument)
        if function == "Fn::If":
            name, when_true, when_false = argument
            return self.value(when_true if self.condition(name) else when_false)
        if function == "Fn::GetAtt":
            resource, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return f"<{resource}.{attribute}>"
        if function == "Fn::Sub":
            if isinstance(argument, str):
                return self.sub(argument, {})
            text, variables = argument
            return self.sub(text, {k: self.value(v) for k, v in variables.items()})
        args = self.value(argument)
        if function == "Fn::Equals":
            return str(args[0]) == str(args[1])
        if function == "Fn::Not":
            return not args[0]
        if function == "Fn::And":
            return all(args)
        if function == "Fn::Or":
            return any(args)
        if function == "Fn::Contains":
            return str(args[1]) in [str(item) for item in args[0]]
        if function == "Fn::Select":
            return args[1][int(args[0])]
        if function == "Fn::Split":
            return str(args[1]).split(args[0])
        if function == "Fn::Join":
            return args[0].join(str(item) for item in args[1])
        if function == "Fn::FindInMap":
            mapping, key, attribute = args
            return self.template["Mappings"][mapping][key][attribute]
        if function == "Fn::GetAZs":
            return [f"{self.pseudo['AWS::Region']}{zone}" for zone in "abc"]
        if function == "Fn::Cidr":
            return [f"<cidr {i}>" for i in range(int(args[1]))]
        raise NotImplementedError(function)

    def failed_rules(self) -> list[str]:
        """AssertDescriptions of the template Rules these parameter values break."""
        failed = []
        for rule in self.template.get("Rules", {}).values():
            if "RuleCondition" in rule and not self.value(rule["RuleCondition"]):
                continue
            for assertion in rule["Assertions"]:
                if not self.value(assertion["Assert"]):
                    failed.append(assertion["AssertDescription"])
        return failed
