"""Reading CloudFormation YAML as plain data, short-form tags (!Ref, !Sub, ...) included.

PyYAML's safe loader rejects unknown tags; CloudFormation templates are full of them. This loader
keeps each tagged node's value and drops the tag, which is all the YAML-level tests need (the
infrastructure tests that evaluate intrinsics use cfn-lint's decoder instead).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class _CloudFormationLoader(yaml.SafeLoader):
    """A SafeLoader that accepts any ``!Tag`` and keeps the tagged value."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> object:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_CloudFormationLoader.add_multi_constructor("!", _any_tag)


def load_yaml(text: str) -> Any:
    """Parse YAML text that may contain CloudFormation short-form tags."""
    return yaml.load(text, Loader=_CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass


def load_cloudformation(path: Path) -> dict[str, Any]:
    """Parse a CloudFormation template file."""
    return load_yaml(path.read_text())
