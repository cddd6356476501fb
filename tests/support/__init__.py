"""Helpers for the template's end-to-end tests, reusable by any test that drives a baked project.

- ``fake_bedrock``: a local Amazon Bedrock Runtime endpoint that streams real event-stream frames.
- ``servers``: Streamlit server processes of a baked project and an nginx reverse proxy.
- ``browser``: Debian's chromium driven by Playwright, and failure artifacts (screenshots, logs).
- ``chat``: reading and driving the chat page the way a person would.
"""
