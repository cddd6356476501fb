"""Checklist-driven production review: prove what a machine can prove of PRODUCTION_CHECKLIST.md.

    uv run python scripts/review.py --static     # the repository only (CI, laptops; needs checkov)
    uv run python scripts/review.py              # the repository and the deployed stacks (boto3)
    uv run python scripts/review.py --pr-template > .github/pull_request_template.md
    uv run python scripts/review.py --preflight  # before the first deploy: what would stop it

The review itself is the package ``production_review`` at the repository's root; this script is
its entry point. Run as a script, Python puts scripts/ on the import path, not the root: the root
goes last, so that no file of the repository can shadow a standard module.
"""

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent.parent))

from production_review.main import main

if __name__ == "__main__":
    sys.exit(main())
