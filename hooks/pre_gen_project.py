"""Reject bad answers before cookiecutter writes anything.

Cookiecutter renders this file with Jinja and runs it with its own interpreter, so it uses the
standard library only. Answers are read as JSON data, never pasted into code, so quotes,
backslashes or Jinja-looking text in an answer cannot break or inject into this script. A non-zero
exit makes cookiecutter remove the half-made project.
"""

from __future__ import annotations

import json
import re
import sys
from importlib.metadata import PackageNotFoundError, version

ANSWERS: dict[str, str] = json.loads(
    r"""{{ {
        "project_name": cookiecutter.project_name,
        "project_slug": cookiecutter.project_slug,
        "description": cookiecutter.description,
        "author": cookiecutter.author,
        "github_repository": cookiecutter.github_repository,
        "aws_region": cookiecutter.aws_region,
        "bedrock_model_id": cookiecutter.bedrock_model_id,
    } | tojson }}"""
)

MIN_COOKIECUTTER = (2, 7)

# The slug names the ECR repository, both stacks and the resources inside them. AWS caps load
# balancer and target group names at 32 characters and the stacks add suffixes such as "-app",
# so 24 keeps every derived name legal.
SLUG_RE = re.compile(r"^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){2,23}$")
# GitHub: owners are 1-39 letters, digits or single inner hyphens; repository names are letters,
# digits, ".", "_" and "-" (but not "." or "..").
GITHUB_REPO_RE = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}/(?!\.{1,2}$)[A-Za-z0-9._-]{1,100}$"
)
# The stacks grant Bedrock through cross-Region inference profiles, whose geographies are us, eu
# and apac; a region outside those three has no profile the app stack can scope IAM to.
REGION_RE = re.compile(r"^(?P<area>us|eu|ap)-[a-z]+-\d{1,2}$")
GEOGRAPHY_OF_AREA = {"us": "us", "eu": "eu", "ap": "apac"}
# An inference profile id: geography prefix, provider, model name, optional version and
# context-window suffixes ("us.amazon.nova-lite-v1:0", "eu.anthropic.claude-...-v1:0:200k").
MODEL_ID_RE = re.compile(
    r"^(?P<geography>us|eu|apac)\.[a-z0-9-]+\.[a-z0-9][a-z0-9-]*(?::[0-9a-z]+){0,2}$"
)
CONTROL_CHARS_RE = re.compile(r"[\x00-\x1f\x7f]")


def cookiecutter_version_problem() -> str | None:
    """Older cookiecutter passes ``--no-input flag=false`` as a truthy string: refuse it."""
    try:
        installed = version("cookiecutter")
    except PackageNotFoundError:
        return None  # Run by another front end (cruft vendors it); nothing to compare.
    parts = tuple(int(p) for p in re.findall(r"\d+", installed)[:2])
    if parts < MIN_COOKIECUTTER:
        wanted = ".".join(map(str, MIN_COOKIECUTTER))
        return f"cookiecutter {installed} is too old: install cookiecutter>={wanted}"
    return None


def problems(answers: dict[str, str]) -> list[str]:
    """Return one clear line per bad answer, in prompt order."""
    found: list[str] = []
    for key in ("project_name", "description", "author"):
        value = answers[key]
        if not value.strip():
            found.append(f"{key}: must not be empty")
        elif CONTROL_CHARS_RE.search(value):
            found.append(f"{key}: must be a single line without control characters")
        elif len(value) > 200:
            found.append(f"{key}: {len(value)} characters; keep it to 200 or fewer")
    if not SLUG_RE.match(answers["project_slug"]):
        found.append(
            f"project_slug: {answers['project_slug']!r} must be 3-24 characters of lowercase "
            "letters, digits and single hyphens, starting with a letter and not ending in a hyphen "
            "(it names the ECR repository, the stacks and the load balancer)"
        )
    if not GITHUB_REPO_RE.match(answers["github_repository"]):
        found.append(
            f"github_repository: {answers['github_repository']!r} must be 'owner/name' as on "
            "GitHub, for example 'my-org/company-chat'"
        )
    region = REGION_RE.match(answers["aws_region"])
    if not region:
        found.append(
            f"aws_region: {answers['aws_region']!r} is not a supported AWS region code: use a "
            "us-*, eu-* or ap-* region such as 'us-east-1', 'eu-west-1' or 'ap-southeast-2' "
            "(the Bedrock inference-profile geographies us, eu and apac)"
        )
    model = MODEL_ID_RE.match(answers["bedrock_model_id"])
    geography = GEOGRAPHY_OF_AREA[region["area"]] if region else None
    if len(answers["bedrock_model_id"]) > 128 or not model:
        found.append(
            f"bedrock_model_id: {answers['bedrock_model_id']!r} is not a Bedrock inference "
            "profile id such as 'us.amazon.nova-lite-v1:0' (geography us, eu or apac, then the "
            "model id)"
        )
    elif geography and model["geography"] != geography:
        found.append(
            f"bedrock_model_id: {answers['bedrock_model_id']!r} is a {model['geography']!r} "
            f"inference profile, but {answers['aws_region']} calls {geography!r} profiles: use "
            f"'{geography}.{answers['bedrock_model_id'].partition('.')[2]}'"
        )
    return found


def main() -> int:
    errors = [p for p in [cookiecutter_version_problem(), *problems(ANSWERS)] if p]
    for line in errors:
        print(f"ERROR: {line}", file=sys.stderr)
    if errors:
        print(
            "Nothing was generated. Run cookiecutter again with corrected answers.", file=sys.stderr
        )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
