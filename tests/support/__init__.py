"""Every helper of the template's tests (conftest.py holds only fixtures; test modules never import
each other or conftest.py).

What is baked and read:
- ``bakery``: the template's location, the supported answer variations, the ``Baker`` type.
- ``cloudformation``: the one CloudFormation loader, and an evaluator of intrinsic functions.
- ``stack_parameters``: app stack parameter sets that switch on each option.
- ``iam_policy``: a small IAM policy evaluator (what a role may do).

What runs a baked project:
- ``fake_bedrock``: a local Amazon Bedrock Runtime endpoint that streams real event-stream frames.
- ``servers``: Streamlit server processes of a baked project and an nginx reverse proxy.
- ``browser``: Debian's chromium driven by Playwright, and failure artifacts (screenshots, logs).
- ``chat``: reading and driving the chat page the way a person would.
- ``oidc``: a real OpenID Connect provider on loopback; ``streamlit_wire``, run by it with the
  baked project's interpreter, talks to Streamlit below the browser.
- ``container``: the image built and run with buildah on local stand-ins of its base images.
"""
