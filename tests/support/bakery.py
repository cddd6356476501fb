"""What the template tests bake: the template's location and every supported set of answers.

conftest.py's ``bake`` fixture bakes them; test modules import the names from here, never from
conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

TEMPLATE_ROOT = Path(__file__).resolve().parents[2]

# Every supported variation of the answers. The infrastructure options are stack parameters, not
# prompts, so the variations are about identity: regions of each inference-profile geography and
# answers that are awkward to render (quotes, backslashes, unicode, Jinja-looking text).
VARIATIONS: dict[str, dict[str, str]] = {
    "default": {},
    "eu": {"aws_region": "eu-west-1", "project_name": "Support Bot"},
    "apac": {"aws_region": "ap-southeast-2", "project_name": "Helpdesk Assistant"},
    "tricky": {
        "project_name": 'Bob\'s "Quoted" Bot \\ Ünïcödé {{ 7 * 7 }}',
        "project_slug": "bobs-bot",
        "description": 'Says "hi" with a backslash \\ and a {% raw %}{{ brace }}{% endraw %}',
        "author": "Zoë O'Brien <zoe@example.com>",
        "github_repository": "Acme-Corp/bobs.bot_v2",
    },
}

# The ``bake`` fixture: bake(**answers) -> the baked project's folder.
Baker = Callable[..., Path]
