"""Parsed, cached views of the files the static checks read."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from .project import APP_PARAMETERS, APP_TEMPLATE, BOOTSTRAP_TEMPLATE
from .registry import Missing


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    """Turn a short-form intrinsic (``!Ref x``, ``!Sub s``) into its long form (``{"Ref": x}``)."""
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref" or suffix == "Condition":
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


class CfnLoader(yaml.SafeLoader):
    """A SafeLoader that understands CloudFormation's short-form intrinsic function tags."""


CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_cfn(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=CfnLoader)  # noqa: S506 (safe)


@dataclass
class Repo:
    """Lazy, cached views of the files the static checks read."""

    root: Path

    def text(self, relative: str) -> str:
        path = self.root / relative
        if not path.is_file():
            raise Missing(f"{relative} not found")
        return path.read_text(encoding="utf-8")

    @cached_property
    def app(self) -> Template:
        """The app stack as the deploy workflow creates it: with infra/app-parameters.json."""
        parameters = self.root / APP_PARAMETERS
        values = json.loads(parameters.read_text(encoding="utf-8")) if parameters.is_file() else {}
        return Template(self._cfn(APP_TEMPLATE), values)

    @cached_property
    def bootstrap(self) -> Template:
        return Template(self._cfn(BOOTSTRAP_TEMPLATE))

    def _cfn(self, relative: str) -> dict[str, Any]:
        self.text(relative)  # raises Missing with a readable message
        return load_cfn(self.root / relative)

    @cached_property
    def dockerfile(self) -> list[tuple[str, str]]:
        return parse_dockerfile(self.text("Dockerfile"))

    @cached_property
    def workflows(self) -> dict[str, dict[str, Any]]:
        folder = self.root / ".github" / "workflows"
        files = sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]) if folder.is_dir() else []
        if not files:
            raise Missing(".github/workflows has no workflow")
        return {f.name: yaml.safe_load(f.read_text(encoding="utf-8")) or {} for f in files}

    @cached_property
    def streamlit_config(self) -> dict[str, Any]:
        return tomllib.loads(self.text(".streamlit/config.toml"))


_NO_VALUE = object()  # what AWS::NoValue resolves to: the entry disappears
_LOGIC = {
    "Fn::Equals": lambda args: len(args) == 2 and str(args[0]) == str(args[1]),
    "Fn::Not": lambda args: not args[0],
    "Fn::And": all,
    "Fn::Or": any,
}


@dataclass
class Template:
    """A parsed CloudFormation template with the lookups the checks need."""

    body: dict[str, Any]
    parameter_values: dict[str, Any] = field(default_factory=dict)  # deployed parameter values

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.body.get("Resources") or {}

    def of_type(self, type_name: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v.get("Type") == type_name}

    def props(self, resource: dict[str, Any]) -> dict[str, Any]:
        return resource.get("Properties") or {}

    def values(self, value: Any) -> list[Any]:
        """Every concrete value a property can take, so a check can demand it in every case.

        Both branches of ``Fn::If``; for a ``Ref`` to a parameter, the value the deploy passes
        (infra/app-parameters.json), else the parameter's default.
        """
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Fn::If" and isinstance(arg, list) and len(arg) == 3:
                return self.values(arg[1]) + self.values(arg[2])
            if key == "Ref" and arg in (self.body.get("Parameters") or {}):
                parameter = self.body["Parameters"][arg]
                return [self.parameter_values.get(arg, parameter.get("Default"))]
            if key == "Ref" and arg == "AWS::NoValue":
                return [None]
        return [value]

    def parameter(self, name: str) -> Any:
        """The deployed value of a parameter: infra/app-parameters.json, else its default."""
        parameter = (self.body.get("Parameters") or {}).get(name)
        if parameter is None:
            raise Missing(f"the template has no parameter {name}")
        return self.parameter_values.get(name, parameter.get("Default"))

    def condition(self, name: str) -> bool:
        """A template condition, evaluated with the deployed parameter values."""
        conditions = self.body.get("Conditions") or {}
        if name not in conditions:
            raise Missing(f"the template has no condition {name}")
        return bool(self.resolve(conditions[name]))

    def resolve(self, value: Any) -> Any:
        """The value CloudFormation builds with the deployed parameters, where it can be known.

        Unlike ``values`` (every branch), this picks the one ``Fn::If`` branch the deployed
        parameters select, replaces a ``Ref`` to a parameter with its value, evaluates
        ``Fn::Equals``/``Not``/``And``/``Or`` and drops ``AWS::NoValue``. References to resources
        and other functions stay as they are. A value that is ``AWS::NoValue`` resolves to None.
        """
        resolved = self._resolve(value)
        return None if resolved is _NO_VALUE else resolved

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self._resolve(item) for item in value]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" and arg == "AWS::NoValue":
                return _NO_VALUE
            if key == "Ref" and arg in (self.body.get("Parameters") or {}):
                return self.parameter(arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::If" and isinstance(arg, list) and len(arg) == 3:
                return self._resolve(arg[1] if self.condition(arg[0]) else arg[2])
            if key in _LOGIC and isinstance(arg, list):
                return _LOGIC[key]([self._resolve(item) for item in arg])
        items = {key: self._resolve(item) for key, item in value.items()}
        return {key: item for key, item in items.items() if item is not _NO_VALUE}

    def value_is(self, value: Any, *accepted: Any) -> bool:
        """True when every possible value is one of ``accepted`` (compared as lowercase text)."""
        wanted = {str(a).lower() for a in accepted}
        return all(str(v).lower() in wanted for v in self.values(value))

    def task_definitions(self) -> dict[str, dict[str, Any]]:
        return self.of_type("AWS::ECS::TaskDefinition")

    def containers(self) -> Iterator[dict[str, Any]]:
        for resource in self.task_definitions().values():
            yield from self.props(resource).get("ContainerDefinitions") or []

    def refs(self, value: Any) -> set[str]:
        """Logical ids a value refers to through Ref, GetAtt or ${Name} in Sub."""
        found: set[str] = set()
        if isinstance(value, dict):
            for key, arg in value.items():
                if key == "Ref" and isinstance(arg, str):
                    found.add(arg)
                elif key == "Fn::GetAtt":
                    found.add(arg[0] if isinstance(arg, list) else str(arg).split(".")[0])
                elif key == "Fn::Sub":
                    text = arg[0] if isinstance(arg, list) else arg
                    found |= {m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text)}
                    found |= self.refs(arg[1] if isinstance(arg, list) else None)
                else:
                    found |= self.refs(arg)
        elif isinstance(value, list):
            for element in value:
                found |= self.refs(element)
        return found


def attributes(template: Template, props: dict[str, Any], key: str) -> dict[str, list[Any]]:
    """Key/value attribute lists (``LoadBalancerAttributes``, ...) as name -> possible values."""
    result: dict[str, list[Any]] = {}
    for entry in props.get(key) or []:
        if isinstance(entry, dict) and "Key" in entry:
            result[entry["Key"]] = template.values(entry.get("Value"))
    return result


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """Instructions as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            keyword, _, rest = full.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The instructions of the last build stage (from its FROM on): what the image runs."""
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    return instructions[starts[-1] :] if starts else instructions


def jobs(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return workflow.get("jobs") or {}


def steps(workflows: dict[str, dict[str, Any]]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name, workflow in workflows.items():
        for job_id, job in jobs(workflow).items():
            for step in job.get("steps") or []:
                yield name, job_id, step


def container_env(container: dict[str, Any]) -> dict[str, Any]:
    return {e.get("Name"): e.get("Value") for e in container.get("Environment") or []}


def dockerfile_env(repo: Repo) -> dict[str, str]:
    """ENV values of the image's final stage (``ENV A=1 B=2`` and ``ENV A 1`` forms)."""
    env: dict[str, str] = {}
    for keyword, args in final_stage(repo.dockerfile):
        if keyword != "ENV":
            continue
        pairs = re.findall(r"""(\w+)=("[^"]*"|'[^']*'|\S+)""", args)
        if pairs:
            env.update({k: v.strip("\"'") for k, v in pairs})
        elif len(parts := args.split(None, 1)) == 2:
            env[parts[0]] = parts[1].strip("\"'")
    return env


def policy_statements(document: Any) -> Iterator[dict[str, Any]]:
    if isinstance(document, dict):
        statements = document.get("Statement") or []
        yield from statements if isinstance(statements, list) else [statements]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
