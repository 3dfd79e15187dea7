"""The corpus pass: word slots become parameters once the evidence is enough, rare variants stay apart,
and a group's key never changes when new variants arrive."""

from __future__ import annotations

import random

from tracemend.analyze.grouping import GroupingRules, generalize, group_family
from tracemend.analyze.signatures import template

from helpers.agent_corpus import generate
from helpers.agent_groups import SCORE, TUNE


def _groups(messages: list[str], rules: GroupingRules | None = None) -> dict[str, str]:
    single = {m: template(m) for m in messages}
    mapping = generalize(set(single.values()), *(() if rules is None else (rules,)))
    return {m: mapping[t] for m, t in single.items()}


def test_a_word_slot_with_enough_variants_is_a_parameter() -> None:
    users = ["news", "cyrus", "test", "admin", "guest", "oracle"]
    out = _groups([f"session closed for user {u}" for u in users])
    assert set(out.values()) == {"session closed for user <*>"}


def test_few_variants_stay_apart() -> None:
    """Two to four words in a slot are as likely an enumeration as a parameter: not enough evidence."""
    for words in (["Up", "Down"], ["failed", "expired", "cancelled", "requires_action"]):
        out = _groups([f"Run run_1 ended with status {w} on node" for w in words])
        assert len(set(out.values())) == len(words)


def test_a_slot_that_already_showed_a_value_needs_one_more_word() -> None:
    out = _groups(
        ["Object of type datetime is not JSON serializable", "Object of type int64 is not JSON serializable"]
    )
    assert set(out.values()) == {"Object of type <*> is not JSON serializable"}


def test_tool_names_of_several_words_join_the_single_word_ones() -> None:
    tools = [
        "web_search",
        "python",
        "calculator",
        "browser",
        "Google Search",
        "DuckDuckGo Search",
        "SQL Query",
    ]
    out = _groups([f"{t} is not a valid tool, try one of [search, calculator]." for t in tools])
    assert set(out.values()) == {"<*> is not a valid tool, try one of [search, calculator]."}


def test_a_sometimes_empty_slot_is_one_slot() -> None:
    names = ["", "send_email", "lookup_order", "get_weather", "refund", "search"]
    out = _groups([f"No handler registered for tool {n} (agent Billing)" for n in names])
    assert set(out.values()) == {"No handler registered for tool <*> (agent Billing)"}
    # Per message: an empty pair of brackets is the slot, empty this time.
    assert template("connection from 10.0.0.1 () at 10:00") == template(
        "connection from 10.0.0.1 (db.hk) at 11:00"
    )


def test_a_name_repeated_in_the_message_varies_as_one_slot() -> None:
    tables = ["orders", "users", "invoices", "sessions", "tickets"]
    sql = 'relation "{0}" does not exist LINE 1: SELECT * FROM {0} WHERE id = 1 [SQL: SELECT * FROM {0} WHERE id = %s]'
    out = _groups([sql.format(t) for t in tables])
    assert len(set(out.values())) == 1 and "FROM <*> WHERE" in next(iter(out.values()))


def test_a_structured_bodys_kept_values_are_never_masked_here() -> None:
    body = "Error code: 400 - {'error': {'message': 'bad request', 'type': 'invalid_request_error', 'code': '%s'}}"
    codes = [
        "context_length_exceeded",
        "invalid_value",
        "model_not_found",
        "unsupported_parameter",
        "invalid_type",
    ]
    out = _groups([body % c for c in codes])
    assert len(set(out.values())) == len(codes)


def test_short_messages_do_not_collapse() -> None:
    out = _groups(
        [
            "connection refused",
            "connection reset",
            "connection closed",
            "connection aborted",
            "connection lost",
        ]
    )
    assert len(set(out.values())) == 5


def _keys_over_time(messages: list[str]) -> list[dict[str, str]]:
    """The group key of every member after each new failure (time = position in the list)."""
    first: dict[str, int] = {}
    history = []
    for t, m in enumerate(messages):
        first.setdefault(template(m), t)
        members = {tmpl: (tmpl, when) for tmpl, when in first.items()}
        history.append({tmpl: key for tmpl, (key, _group) in group_family(members).items()})
    return history


def test_keys_are_stable_new_variants_join_and_merges_keep_the_older_key() -> None:
    rng = random.Random(4)
    users = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
    messages = [
        f"Permission denied for user {rng.choice(users)} on /srv/{rng.randint(1, 9)}.txt" for _ in range(60)
    ]
    messages += [f"Quota exceeded for workspace {w}" for w in ("acme", "globex")]
    history = _keys_over_time(messages)
    first_seen = {}
    for t, m in enumerate(messages):
        first_seen.setdefault(template(m), t)
    for before, after in zip(history, history[1:], strict=False):
        for member, key in before.items():
            new = after[member]
            # Unchanged, or its group joined an older one (the older key stays, this one is an alias).
            assert new == key or first_seen[new] < first_seen[key], (member, key, new)
    final = history[-1]
    assert len({final[template(m)] for m in messages[:60]}) == 1
    assert final[template(messages[0])] == template(messages[0])  # the oldest member's key


def test_more_evidence_only_merges() -> None:
    """On the generated agent corpus, every pair grouped together on a prefix stays together."""
    for groups in (TUNE, SCORE):
        rows = generate(groups, 1500, 3)
        for cut in (300, 800):
            early = _family_groups(rows[:cut])
            late = _family_groups(rows)
            for (family, tmpl_a), group in early.items():
                for (family_b, tmpl_b), group_b in early.items():
                    if family == family_b and group == group_b:
                        assert late[(family, tmpl_a)] == late[(family_b, tmpl_b)]


def _family_groups(rows: list) -> dict[tuple, str]:
    by_family: dict[tuple, set[str]] = {}
    for r in rows:
        by_family.setdefault(r.family, set()).add(template(r.message))
    out = {}
    for family, templates in by_family.items():
        mapping = generalize(templates)
        out.update({(family, t): mapping[t] for t in templates})
    return out
