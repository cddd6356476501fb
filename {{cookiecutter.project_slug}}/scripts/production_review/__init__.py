"""The production review behind scripts/review.py, one module per concern.

- ``project``: what this repository is (names baked in at generation) and shared constants;
- ``checklist``: reading PRODUCTION_CHECKLIST.md, and the pull request template made from it;
- ``registry``: the ``@check("ID", mode)`` decorator that links a function to a checklist item;
- ``repository``: parsed views of the files (CloudFormation with its tags, Dockerfile, workflows);
- ``static_files``, ``static_stacks`` and ``static_monitoring``: checks of the repository's files
  and stack templates;
- ``live`` and ``live_monitoring``: checks of the deployed stacks through boto3;
- ``retention``: the retention purge is scheduled (static) and ran in the last day (live);
- ``report``: running the checks and printing one Markdown line per checklist item.
"""
