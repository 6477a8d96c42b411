"""The self-indexing entity tables: every lookup answers what a scan would, in the same order.

A hypothesis test drives one users table through random inserts, replacements, deletions and
in-place edits (tags added, removed, moved between users and renumbered; e-mails changed) and
after every step compares each index with a brute-force scan of ``table.values()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from doorfix.sandbox.world import tables
from doorfix.sandbox.world.model import Tag, User
from doorfix.sandbox.world.tables import Table

IDS = [f"u-{n}" for n in range(6)]
NUMBERS = ["100", "200", "300", "400"]
EMAILS = ["Ann@x.test", "ann@X.TEST", "bob@x.test", "Straße@x.test", "STRASSE@x.test"]
CLP_IDS = ["clp-1", "clp-2", "clp-3"]
PERSONNEL = ["per-1", "per-2", None]

#: each index of the users table and the scan it must agree with
SCANS: dict[str, Callable[[User, str], bool]] = {
    "email": lambda u, v: u.email.casefold() == v.casefold(),
    "tag": lambda u, v: any(t.number == v for t in u.tags),
    "clp_user_id": lambda u, v: u.clp_user_id == v,
    "cloud_personnel_id": lambda u, v: u.cloud_personnel_id == v,
}
QUERIES: dict[str, list[str]] = {
    "email": EMAILS,
    "tag": NUMBERS,
    "clp_user_id": CLP_IDS,
    "cloud_personnel_id": [p for p in PERSONNEL if p is not None],
}


def _user(uid: str, email: str, clp: str, personnel: str | None, numbers: list[str]) -> User:
    tags = [Tag(n, "assigned") for n in numbers]
    return User(uid, uid.upper(), email, "co-1", "c-1", clp, personnel, tags)


users_st = st.builds(
    _user,
    st.sampled_from(IDS),
    st.sampled_from(EMAILS),
    st.sampled_from(CLP_IDS),
    st.sampled_from(PERSONNEL),
    st.lists(st.sampled_from(NUMBERS), max_size=3),
)


@dataclass(frozen=True)
class Op:
    """One step: ``kind`` and its arguments."""

    kind: str
    uid: str = ""
    other: str = ""
    value: str = ""
    n: int = 0
    user: User | None = None


ops_st = st.one_of(
    st.builds(Op, st.just("store"), user=users_st),
    st.builds(Op, st.just("delete"), st.sampled_from(IDS)),
    st.builds(Op, st.just("pop"), st.sampled_from(IDS)),
    st.builds(Op, st.just("add_tag"), st.sampled_from(IDS), value=st.sampled_from(NUMBERS)),
    st.builds(Op, st.just("remove_tag"), st.sampled_from(IDS), n=st.integers(0, 3)),
    st.builds(
        Op, st.just("move_tag"), st.sampled_from(IDS), st.sampled_from(IDS), n=st.integers(0, 3)
    ),
    st.builds(
        Op,
        st.just("renumber"),
        st.sampled_from(IDS),
        value=st.sampled_from(NUMBERS),
        n=st.integers(0, 3),
    ),
    st.builds(Op, st.just("email"), st.sampled_from(IDS), value=st.sampled_from(EMAILS)),
    st.builds(Op, st.just("personnel"), st.sampled_from(IDS), value=st.sampled_from(["per-1", ""])),
    st.builds(Op, st.just("clear")),
    st.builds(Op, st.just("update"), user=users_st),
)


def _apply(table: Table[User], op: Op) -> None:  # noqa: PLR0912 (one branch per kind of step)
    """Apply one step the way the sandbox's code would: dict writes or announced edits."""
    if op.kind == "store" and op.user is not None:
        table[op.user.id] = op.user
    elif op.kind == "update" and op.user is not None:
        table.update({op.user.id: op.user})
    elif op.kind == "clear":
        table.clear()
    elif op.uid not in table:
        return
    elif op.kind == "delete":
        del table[op.uid]
    elif op.kind == "pop":
        assert table.pop(op.uid).id == op.uid
    elif op.kind == "add_tag":
        with table.editing(op.uid) as user:
            user.tags.append(Tag(op.value, "assigned"))
    elif op.kind == "remove_tag":
        with table.editing(op.uid) as user:
            if user.tags:
                user.tags.pop(op.n % len(user.tags))
    elif op.kind == "move_tag" and op.other in table:
        # a tag reassigned from one user to another: two announced edits
        with table.editing(op.uid) as giver:
            moved = giver.tags.pop(op.n % len(giver.tags)) if giver.tags else None
        if moved is not None:
            with table.editing(op.other) as taker:
                taker.tags.append(moved)
    elif op.kind == "renumber":
        with table.editing(op.uid) as user:
            if user.tags:
                user.tags[op.n % len(user.tags)].number = op.value
    elif op.kind == "email":
        table[op.uid].email = op.value
        table.reindex(op.uid)  # announced after the fact
    elif op.kind == "personnel":
        with table.editing(op.uid) as user:
            user.cloud_personnel_id = op.value or None


def _assert_agrees(table: Table[User]) -> None:
    assert table.problems() == []
    for index, scan in SCANS.items():
        for value in QUERIES[index]:
            key = value.casefold() if index == "email" else value
            expected = [u for u in table.values() if scan(u, value)]
            found = table.where(index, key)
            assert [id(u) for u in found] == [id(u) for u in expected], (index, value)
            assert table.first(index, key) is (expected[0] if expected else None)


@settings(max_examples=300, deadline=None)
@given(st.lists(ops_st, max_size=40))
def test_every_index_agrees_with_a_scan_after_any_mutations(ops: list[Op]) -> None:
    table = tables.users()
    for op in ops:
        _apply(table, op)
        _assert_agrees(table)


def test_a_replaced_entity_keeps_its_place_and_a_reinserted_one_goes_last() -> None:
    table = tables.users()
    for uid in ("u-1", "u-2", "u-3"):
        table[uid] = _user(uid, f"{uid}@x.test", "clp-1", None, ["100"])
    table["u-1"] = _user("u-1", "new@x.test", "clp-1", None, ["100"])
    assert [u.id for u in table.where("tag", "100")] == ["u-1", "u-2", "u-3"] == list(table)
    table["u-2"] = table.pop("u-2")
    assert [u.id for u in table.where("clp_user_id", "clp-1")] == ["u-1", "u-3", "u-2"]
    assert table.where("email", "u-1@x.test") == []
    assert table.problems() == []


def test_an_edit_after_the_fact_is_found_stale_until_reindexed() -> None:
    table = tables.users()
    table["u-1"] = _user("u-1", "a@x.test", "clp-1", None, ["100"])
    table["u-1"].tags.append(Tag("200", "assigned"))  # not announced
    assert table.problems() == ["index 'tag' is stale"]
    table.reindex("u-1")
    assert table.problems() == []
    assert [u.id for u in table.where("tag", "200")] == ["u-1"]


def test_dict_interface_still_answers_like_a_dict() -> None:
    table = tables.users()
    user = _user("u-1", "a@x.test", "clp-1", "per-1", ["100", "100"])
    assert table.setdefault("u-1", user) is user
    assert table.pop("nope", None) is None
    with pytest.raises(KeyError):
        table.pop("nope")
    table |= {"u-2": _user("u-2", "b@x.test", "clp-2", None, [])}
    assert isinstance(table, dict)
    assert list(table) == ["u-1", "u-2"]
    assert table.where("tag", "100") == [user]  # a number held twice is listed once
    assert table.popitem()[0] == "u-2"
    assert table.where("clp_user_id", "clp-2") == []
    assert table.problems() == []
