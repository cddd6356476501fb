"""The production review: what a machine can prove of PRODUCTION_CHECKLIST.md.

The checklist is the source of truth. Each item's "Review:" line says how it is proved: `manual`
(a decision for the team), `live` (the deployed stacks, read through boto3) or `static` followed by
the checks that prove it from the repository. A static item names checkov ids (the built-in
CloudFormation checks and this repository's own policies in infra/checks/), zizmor audits of the
workflows (zizmor/unpinned-uses) and, where no validator can express the rule, a Python check of
this package by name.

- ``project``: names baked in at generation, and what the checks share;
- ``checklist``: reading the checklist, and the pull request template made from it;
- ``checkov``: running checkov (or reading the report CI already made) and mapping its results;
- ``zizmor``: running zizmor over .github/ and mapping its findings;
- ``static``: the checks no validator can express (they read several files, or deployed values);
- ``live``: the checks of the deployed stacks;
- ``preflight``: what would stop the first deploy;
- ``main``: the command line, the orchestration and the Markdown report.
"""
