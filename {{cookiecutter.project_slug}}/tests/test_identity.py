"""A signed-in person's store key and who is let in: core/identity.py against hostile claims."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from pathlib import Path

import pytest

from core.identity import MAX_DISPLAY_NAME, Person, Refusal, owner_id_for, person_from_claims
from core.messages import Message
from core.sessions import SessionStore, parse_session_key

ISSUER = "https://login.example.com/"
OWNER_ID = re.compile(r"[0-9a-f]{64}")

HOSTILE = [
    "../../etc/passwd",
    "..",
    ".",
    "/",
    "a/b",
    "a\\b",
    "C:\\Windows",
    "nul\x00byte",
    "\x00",
    "line\nbreak",
    "x" * 10_240,
    "é" * 10_240,
    "👩‍💻 Ünïcødé ☃",
    "\udcff",  # a lone surrogate: not encodable as UTF-8
    '"quoted", ["json"]',
    " ",
]


def test_owner_id_is_the_sha256_of_the_json_pair() -> None:
    expected = hashlib.sha256(json.dumps([ISSUER, "alice"]).encode()).hexdigest()
    assert owner_id_for(ISSUER, "alice") == expected
    assert OWNER_ID.fullmatch(expected)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_subjects_and_issuers_become_one_safe_path_component(hostile: str) -> None:
    for owner_id in (owner_id_for(ISSUER, hostile), owner_id_for(hostile, "alice")):
        assert OWNER_ID.fullmatch(owner_id), owner_id
        assert Path(owner_id).name == owner_id


@pytest.mark.parametrize("hostile", HOSTILE)
def test_the_store_files_a_hostile_subject_inside_its_own_folder(
    tmp_path: Path, hostile: str
) -> None:
    store = SessionStore(tmp_path / "sessions")
    owner_id = owner_id_for(ISSUER, hostile)
    conversation = store.create_conversation(owner_id)
    store.append_messages(owner_id, conversation, [Message(role="user", content="hi")])
    folders = [p.name for p in (tmp_path / "sessions").iterdir()]
    assert folders == [owner_id]
    assert [m.content for m in store.read_messages(owner_id, conversation)] == ["hi"]


def test_distinct_pairs_never_collide_by_concatenation() -> None:
    pairs = [
        ("a", "bc"),
        ("ab", "c"),
        ("abc", ""),
        ('a"', "bc"),
        ("a", '"bc'),
        ('a", "b', "c"),
        ("a", 'b", "c'),
        ("a\\", "bc"),
        ("a", "\\bc"),
        (ISSUER, "alice"),
        (ISSUER.rstrip("/"), "/alice"),
        (ISSUER, "Alice"),
        ("https://other.example.com/", "alice"),
    ]
    pairs = [(i, s) for i, s in pairs if i and s]
    ids = {pair: owner_id_for(*pair) for pair in pairs}
    assert len(set(ids.values())) == len(pairs)
    # Swapping issuer and subject is a different person too.
    for issuer, subject in itertools.islice(pairs, 5):
        assert owner_id_for(issuer, subject) != owner_id_for(subject, issuer)


@pytest.mark.parametrize(("issuer", "subject"), [("", "alice"), (ISSUER, ""), ("", "")])
def test_an_empty_issuer_or_subject_is_refused(issuer: str, subject: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        owner_id_for(issuer, subject)


@pytest.mark.parametrize("bad", [None, 42, b"alice", ["alice"]])
def test_only_strings_make_an_owner_id(bad: object) -> None:
    with pytest.raises(TypeError):
        owner_id_for(ISSUER, bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "key",
    [
        "a" * 63,
        "a" * 65,
        "A" * 64,
        "g" * 64,
        "a" * 63 + "\n",
        "../" + "a" * 61,
        "0F8FAD5B-D9CB-469F-A165-70867728950E",
        "6ba7b810-9dad-11d1-80b4-00c04fd430c8",  # a uuid1
    ],
)
def test_the_store_takes_owner_ids_and_uuid4s_and_nothing_like_them(
    tmp_path: Path, key: str
) -> None:
    store = SessionStore(tmp_path / "sessions")
    with pytest.raises(ValueError, match="owner id"):
        store.list_conversations(key)
    with pytest.raises(ValueError, match="owner id"):
        store.create_conversation(key)
    assert list((tmp_path / "sessions").iterdir()) == []
    assert store.list_conversations(owner_id_for(ISSUER, "alice")) == []
    assert store.list_conversations("0f8fad5b-d9cb-469f-a165-70867728950e") == []


def test_a_browser_can_never_present_an_owner_id_as_its_key() -> None:
    assert parse_session_key(owner_id_for(ISSUER, "alice")) is None


# --- who is let in ---------------------------------------------------------------------------


def claims(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "is_logged_in": True,
        "iss": ISSUER,
        "sub": "248289761001",
        "email": "alice@example.com",
        "email_verified": True,
        "name": "Alice Example",
        "iat": 1_700_000_000,
        "exp": 1_700_003_600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_verified_claims_make_a_person_keyed_by_issuer_and_subject() -> None:
    person = person_from_claims(claims())
    assert person == Person(
        owner_id=owner_id_for(ISSUER, "248289761001"),
        issuer=ISSUER,
        subject="248289761001",
        display_name="alice@example.com",
    )


def test_the_same_subject_at_another_issuer_is_another_person() -> None:
    here = person_from_claims(claims())
    there = person_from_claims(claims(iss="https://other.example.com/"))
    assert isinstance(here, Person) and isinstance(there, Person)
    assert here.owner_id != there.owner_id


def test_the_email_does_not_decide_the_key() -> None:
    before = person_from_claims(claims())
    after = person_from_claims(claims(email="alice.new@example.com"))
    assert isinstance(before, Person) and isinstance(after, Person)
    assert before.owner_id == after.owner_id


@pytest.mark.parametrize(
    "missing",
    [{"iss": None}, {"sub": None}, {"iss": ""}, {"sub": ""}, {"sub": 42}, {"iss": ["x"]}],
)
def test_claims_without_issuer_or_subject_are_refused(missing: dict[str, object]) -> None:
    outcome = person_from_claims(claims(**missing))
    assert isinstance(outcome, Refusal)
    assert "issuer" in outcome.reason and "subject" in outcome.reason


@pytest.mark.parametrize("flag", [False, "false", "FALSE"])
def test_an_unverified_email_is_refused(flag: object) -> None:
    outcome = person_from_claims(claims(email_verified=flag))
    assert isinstance(outcome, Refusal)
    assert "not verified" in outcome.reason


@pytest.mark.parametrize("flag", [None, True, "true"])
def test_an_email_verified_claim_that_is_absent_or_true_is_accepted(flag: object) -> None:
    assert isinstance(person_from_claims(claims(email_verified=flag)), Person)


@pytest.mark.parametrize(
    "email",
    ["alice@example.com", "Alice@EXAMPLE.com", "alice@example.org", 'weird"@example.com'],
)
def test_an_allowed_domain_is_let_in(email: str) -> None:
    outcome = person_from_claims(claims(email=email), ("example.com", "example.org"))
    assert isinstance(outcome, Person)


@pytest.mark.parametrize(
    "email",
    [
        "mallory@evil-example.com",
        "mallory@example.com.evil.net",
        "mallory@sub.example.com",
        "mallory@evil.net@",
        "example.com",
        "mallory@example.com@evil.net",
        None,
        "",
    ],
)
def test_an_email_outside_the_allowed_domains_is_refused(email: str | None) -> None:
    outcome = person_from_claims(claims(email=email), ("example.com",))
    assert isinstance(outcome, Refusal)
    assert "example.com" in outcome.reason


def test_without_allowed_domains_an_email_is_optional() -> None:
    outcome = person_from_claims(claims(email=None))
    assert isinstance(outcome, Person)
    assert outcome.display_name == "Alice Example"
    no_name = person_from_claims(claims(email=None, name=None))
    assert isinstance(no_name, Person)
    assert no_name.display_name == "248289761001"


def test_the_display_name_is_printable_and_bounded() -> None:
    outcome = person_from_claims(claims(email=None, name="Eve\x00\n\x1b[31m" + "e" * 10_000))
    assert isinstance(outcome, Person)
    assert outcome.display_name.startswith("Eve[31m")
    assert len(outcome.display_name) == MAX_DISPLAY_NAME
    assert all(ch.isprintable() for ch in outcome.display_name)
