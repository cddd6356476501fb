"""The Streamlit half of sign-in: who is on this page, and what people who are not let in see.

With ``AUTH_MODE=oidc`` (core/config.py) Streamlit's own OpenID Connect support does the sign-in:
``st.login()`` sends the browser to the identity provider, Streamlit verifies the ID token it gets
back and keeps the claims in a cookie signed with ``STREAMLIT_SERVER_COOKIE_SECRET``; ``st.user``
reads that cookie when the page's websocket opens. A missing, tampered or expired cookie reads as
signed out. core/identity.py decides whether the claims name a person this app serves.

``gate`` runs first on every page run, before anything reads the store, the browser's local
storage or draws the sidebar: a visitor who is not signed in gets the signed-out page and the run
stops there. Unset ``AUTH_MODE`` means anonymous and ``gate`` lets every run through unchanged.

This module may import Streamlit; core/ may not.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from core.config import ConfigError, load_auth_settings
from core.identity import Person, Refusal, person_from_claims

# The page texts probes, smoke checks and the live review look for (CONTRACT: keep them exact).
SIGN_IN_PROMPT = "Sign in to continue."
SIGN_IN_LABEL = "Sign in"
SIGN_OUT_LABEL = "Sign out"
MISCONFIGURED = "Sign-in is misconfigured"


@dataclass(frozen=True)
class SignedIn:
    """The person on this page, and where "Sign out" sends them."""

    person: Person
    logout_url: str | None


def gate(title: str) -> SignedIn | None:
    """Who may use this page run: ``None`` in anonymous mode, else the signed-in person.

    Everyone else gets a page of their own and the run stops here (``st.stop``): the signed-out
    page, a refusal with its reason, or the misconfiguration error. None of them touches the store.
    """
    try:
        auth = load_auth_settings()
    except ConfigError as error:
        st.error(f"{MISCONFIGURED}, so nobody can sign in.\n\n{error}")
        st.stop()
    if not auth.required:
        return None
    claims = st.user.to_dict()
    if "is_logged_in" not in claims:
        # Streamlit adds this key only when its [auth] settings exist: serve.py writes them.
        st.error(
            f"{MISCONFIGURED}: the server started without its [auth] settings. Start it with "
            "`python serve.py` (the container's entrypoint), which writes them from the OIDC_* "
            "variables; its log says what went wrong."
        )
        st.stop()
    if claims["is_logged_in"] is not True:
        render_signed_out(title)
        st.stop()
    outcome = person_from_claims(claims, auth.allowed_email_domains)
    if isinstance(outcome, Refusal):
        st.title(title)
        st.error(outcome.reason)
        render_sign_out(auth.logout_url)
        st.stop()
    return SignedIn(person=outcome, logout_url=auth.logout_url)


def render_signed_out(title: str) -> None:
    """The only thing a visitor without a valid identity cookie sees."""
    st.title(title)
    st.write(SIGN_IN_PROMPT)
    if st.button(SIGN_IN_LABEL, type="primary"):
        st.login()


def render_account(signed_in: SignedIn) -> None:
    """Sidebar lines of a signed-in person: who they are and how to leave; never a key."""
    st.text(f"Signed in as {signed_in.person.display_name}")
    render_sign_out(signed_in.logout_url)


def render_sign_out(logout_url: str | None) -> None:
    """Sign out of the app and, where the provider allows, of the provider too.

    With ``OIDC_LOGOUT_URL`` (Cognito, whose discovery document has no end_session_endpoint) the
    tab goes to the provider's sign-out address, which ends the provider's session and comes back
    to Streamlit's /auth/logout, which deletes the identity cookie. Without it, ``st.logout()``
    deletes the cookie and follows the provider's end_session_endpoint when it has one.
    """
    if logout_url:
        st.button(SIGN_OUT_LABEL, on_click=_navigate, args=(logout_url,))
    else:
        st.button(SIGN_OUT_LABEL, on_click=st.logout)


def _navigate(url: str) -> None:
    """Send this tab to ``url``, the way ``st.login`` and ``st.logout`` do.

    Streamlit has no public call that leaves the app in the same tab (``st.link_button`` opens a
    new one, leaving this tab signed in). Its login and logout send a ``ForwardMsg.auth_redirect``,
    on which the page sets ``window.location``; this sends the same message.
    """
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    context = get_script_run_ctx()
    if context is None:  # not in a page run (an import, a test without a page)
        return
    message = ForwardMsg()
    message.auth_redirect.url = url
    context.enqueue(message)
