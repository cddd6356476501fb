"""Who is signed in, and which store folder is theirs: pure functions, no Streamlit.

Streamlit's ``st.login`` verifies the identity provider's ID token (signature, issuer, audience,
expiry, nonce) and keeps its claims in a signed cookie; ``st.user`` exposes them on every run.
This module turns those verified claims into a ``Person`` the app may serve, or a ``Refusal``
with a reason a person can read. Nothing here trusts a value the browser can set: the claims come
only from the signed cookie, and the store folder is a hash of them.

A person's conversations live under ``<SESSIONS_DIR>/<owner id>/``. The owner id is the SHA-256 of
``json.dumps([issuer, subject])``: OpenID Connect promises that ``sub`` is unique and stable only
within one issuer, so both go in, and JSON keeps the pair unambiguous (``("a", "bc")`` and
``("ab", "c")`` are different documents, where plain concatenation would be the same string). The
digest is 64 lowercase hex characters whatever the provider sends (slashes, ``..``, NUL, megabytes
of unicode), so it is always one safe path component, and it reveals neither the e-mail address nor
the subject to someone who can list the folder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass

# What the page shows as "Signed in as ..." is cut to this many characters: a claim is the
# provider's data, not ours, and a name that fills the sidebar helps nobody.
MAX_DISPLAY_NAME = 120


def owner_id_for(issuer: str, subject: str) -> str:
    """The store key of the person ``subject`` at ``issuer``: 64 lowercase hex characters."""
    if type(issuer) is not str or type(subject) is not str:
        raise TypeError("issuer and subject must be strings")
    if not issuer or not subject:
        raise ValueError("issuer and subject must not be empty")
    # ensure_ascii (the default) escapes every non-ASCII character, lone surrogates included, so
    # the document always encodes and two different pairs never produce the same bytes.
    document = json.dumps([issuer, subject])
    return hashlib.sha256(document.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class Person:
    """A signed-in person the app serves."""

    owner_id: str  # the store key: owner_id_for(issuer, subject)
    issuer: str
    subject: str
    display_name: str  # their e-mail address, else their name, else the subject


@dataclass(frozen=True)
class Refusal:
    """A verified sign-in the app does not accept, and why, in words for the person."""

    reason: str


def person_from_claims(
    claims: Mapping[str, object], allowed_email_domains: Collection[str] = ()
) -> Person | Refusal:
    """Decide whether the verified ID token claims in ``claims`` name a person this app serves.

    Refused: claims without an issuer or subject (no stable identity to file conversations
    under); an ``email_verified`` claim that is false (anyone can type an address they do not
    own at some providers); and, when ``allowed_email_domains`` is not empty, an address outside
    those domains (lowercase, compared exactly: ``example.com`` does not admit
    ``evil-example.com`` nor ``sub.example.com``).
    """
    issuer, subject = claims.get("iss"), claims.get("sub")
    if not isinstance(issuer, str) or not issuer or not isinstance(subject, str) or not subject:
        return Refusal(
            "Your identity provider did not say who you are: the sign-in carries no issuer or "
            "no subject. Ask the administrator of this app to check its sign-in settings."
        )
    email = claims.get("email")
    email = email if isinstance(email, str) and email else None
    if _explicitly_false(claims.get("email_verified")):
        return Refusal(
            "Your identity provider says your e-mail address is not verified. Verify it with "
            "your identity provider, then sign in again."
        )
    if allowed_email_domains:
        domain = email.rpartition("@")[2].lower() if email and "@" in email else None
        if domain is None or domain not in allowed_email_domains:
            allowed = ", ".join(sorted(allowed_email_domains))
            return Refusal(
                "This app is open only to e-mail addresses at "
                f"{allowed}, and you signed in "
                + (
                    f"as {_printable(email)[:MAX_DISPLAY_NAME]}."
                    if email
                    else "without an e-mail address."
                )
                + " Sign out and sign in with your work account."
            )
    name = claims.get("name")
    shown = email or (name if isinstance(name, str) and name.strip() else None) or subject
    return Person(
        owner_id=owner_id_for(issuer, subject),
        issuer=issuer,
        subject=subject,
        display_name=_printable(shown)[:MAX_DISPLAY_NAME],
    )


def _explicitly_false(value: object) -> bool:
    """``email_verified`` is a boolean by the standard; some providers send the string."""
    return value is False or (isinstance(value, str) and value.strip().lower() == "false")


def _printable(text: str) -> str:
    """``text`` without control characters (a claim is shown on the page as plain text)."""
    return "".join(ch for ch in text if ch.isprintable()).strip() or "(no name)"
