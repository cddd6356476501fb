"""The browser's half of a session: one random key in localStorage, nothing else.

Conversations live on the server (core/sessions.py); the browser only remembers which ones are its
own, through a uuid4 kept under the localStorage item {{ cookiecutter.__session_storage_key }}. That
key survives reloads, server restarts and a different replica answering the next request, which is
what makes the app stateful without sticky state in any one process.

The key is read through streamlit-local-storage, a component with a few quirks this module hides:

- It stores each value wrapped as ``{"<item>": value}`` and hands it back unwrapped and
  JSON-parsed, so a tampered item may arrive as a list, dict or number. Whatever it is,
  ``parse_session_key`` accepts only a canonical uuid4 string; anything else starts a new session
  (the key is attacker-controlled input and ends up in file paths on the server).
- Each ``setItem`` call in one script run needs its own ``key=``; we make exactly one.
- A write followed at once by ``st.rerun()`` can be cancelled before the browser sees it, so a
  freshly minted key is written again on every run of this browser session (the component skips
  identical writes, so this costs nothing once it has landed).
- Its first read busy-waits for the browser, which never answers under ``AppTest``: tests replace
  ``make_key_store`` with an in-memory fake (``FakeBrowser`` in tests/fakes.py).
- It also writes a stray ``undefined`` item to localStorage; that is the component's, and harmless.

This module may import Streamlit; core/ may not.
"""

from __future__ import annotations

from typing import Protocol

import streamlit as st

from core.sessions import new_session_key, parse_session_key

STORAGE_ITEM = "{{ cookiecutter.__session_storage_key }}"
# st.session_state keys. They hold the session key, never a conversation.
_MINTED = "browser_session.minted_key"


class KeyStore(Protocol):
    """Where the browser keeps its session key."""

    def read(self) -> object:
        """The stored value as the browser returned it (any JSON type), or None."""
        ...

    def write(self, value: str) -> None:
        """Ask the browser to store ``value``."""
        ...


class LocalStorageKeyStore:
    """``KeyStore`` on the browser's localStorage, through streamlit-local-storage."""

    def __init__(self) -> None:
        from streamlit_local_storage import LocalStorage

        self._storage = LocalStorage()

    def read(self) -> object:
        return self._storage.getItem(STORAGE_ITEM)

    def write(self, value: str) -> None:
        self._storage.setItem(STORAGE_ITEM, value, key=f"{STORAGE_ITEM}-write")


def make_key_store() -> KeyStore:
    """The key store for this page. Tests replace this function to inject a fake."""
    return LocalStorageKeyStore()


def current_session_key(store: KeyStore) -> str:
    """This browser's session key: the stored one if it is a canonical uuid4, else a new one."""
    minted = st.session_state.get(_MINTED)
    if minted is not None:
        # Written earlier in this browser session: write again in case a rerun cancelled it.
        store.write(minted)
        return minted
    existing = parse_session_key(store.read())
    if existing is not None:
        return existing
    key = new_session_key()
    st.session_state[_MINTED] = key
    store.write(key)
    return key
