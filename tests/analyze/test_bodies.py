"""Structured error bodies keep the fields that say what went wrong: provider errors that need different
actions stay apart, through the per-message template and through the corpus pass."""

from __future__ import annotations

from collections import defaultdict

import pytest

from tracemend.analyze.grouping import generalize, group_family
from tracemend.analyze.signatures import template

from helpers.agent_corpus import generate
from helpers.agent_groups import SCORE, TUNE

_RL = (
    "Error code: 429 - {'error': {'message': 'Rate limit reached for gpt-4o in organization org-4qQ1 on "
    "%s per min (%s): Limit 30000, Used 29876, Requested 1204. Please try again in 2.16s. Visit "
    "https://platform.openai.com/account/rate-limits to learn more.', 'type': '%s', 'param': None, "
    "'code': 'rate_limit_exceeded'}}"
)
QUOTA = (
    "Error code: 429 - {'error': {'message': 'You exceeded your current quota, please check your plan and "
    "billing details. For more information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors.', 'type': 'insufficient_quota', "
    "'param': None, 'code': 'insufficient_quota'}}"
)
TOKENS = _RL % ("tokens", "TPM", "tokens")
REQUESTS = _RL % ("requests", "RPM", "requests")
CONTEXT = (
    "Error code: 400 - {'error': {'message': \"This model's maximum context length is 128000 tokens. However, "
    "your messages resulted in 131072 tokens. Please reduce the length of the messages.\", 'type': "
    "'invalid_request_error', 'param': 'messages', 'code': 'context_length_exceeded'}}"
)
TOOL_ORDER = (
    "Error code: 400 - {'error': {'message': \"An assistant message with 'tool_calls' must be followed by tool "
    "messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
    "call_8Hq2\", 'type': 'invalid_request_error', 'param': 'messages.[3].role', 'code': None}}"
)
SLACK = (
    "The request to the Slack API failed. (url: https://www.slack.com/api/chat.postMessage)\n"
    "The server responded with: {'ok': False, 'error': '%s'}"
)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (QUOTA, TOKENS),
        (QUOTA, REQUESTS),
        (TOKENS, REQUESTS),
        (CONTEXT, TOOL_ORDER),
        (SLACK % "channel_not_found", SLACK % "ratelimited"),
    ],
    ids=["quota-vs-tokens", "quota-vs-requests", "tokens-vs-requests", "context-vs-tool-order", "slack"],
)
def test_the_issues_provider_errors_stay_apart(a: str, b: str) -> None:
    assert template(a) != template(b)
    # The corpus pass does not join them either, even beside many variants of their values.
    family = [a, b, *(a.replace("30000", str(n)).replace("org-4qQ1", f"org-{n}x") for n in range(10))]
    mapping = generalize({template(m) for m in family})
    assert mapping[template(a)] != mapping[template(b)]


def test_the_kept_fields_are_template_text_and_the_rest_is_masked() -> None:
    out = template(TOKENS)
    assert "'type': 'tokens'" in out and "'code': 'rate_limit_exceeded'" in out and "'param': None" in out
    assert "org-4qQ1" not in out and "29876" not in out and "2.16s" not in out
    assert template(TOKENS.replace("gpt-4o", "gpt-4o-mini").replace("1204", "7")) == out


def test_json_and_python_repr_of_one_body_share_a_template() -> None:
    as_json = (
        'Error code: 429 - {"error": {"message": "You exceeded your current quota, please check your plan and '
        "billing details. For more information on this error, read the docs: "
        'https://platform.openai.com/docs/guides/error-codes/api-errors.", "type": "insufficient_quota", '
        '"param": null, "code": "insufficient_quota"}}'
    )
    assert template(as_json) == template(QUOTA)


def test_a_body_in_bytes_and_nested_status_keeps_its_error() -> None:
    qdrant = (
        'Unexpected Response: 404 (Not Found)\nRaw response content:\nb\'{"status":{"error":"Not found: '
        'Collection `%s` doesn\'t exist!"},"time":0.0000%d}\''
    )
    a, b = template(qdrant % ("docs", 12)), template(qdrant % ("faq_v2", 7))
    assert a == b
    assert "'error': 'Not found: Collection <*> doesn't exist!'" in a
    dim = template(
        'Unexpected Response: 400 (Bad Request)\nRaw response content:\nb\'{"status":{"error":"Wrong input: '
        'Vector dimension error: expected dim: 1536, got 3072"},"time":0.0001}\''
    )
    assert dim != a


def test_headers_and_data_dicts_are_values() -> None:
    pinecone = (
        "(404)\nReason: Not Found\nHTTP response headers: HTTPHeaderDict({'content-type': 'application/json', "
        "'date': '%s', 'x-request-id': '%s'})\nHTTP response body: {\"code\":5,\"message\":\"Namespace not found\"}"
    )
    a = template(pinecone % ("Tue, 02 Jan 2024 10:00:00 GMT", "abc"))
    b = template(pinecone % ("Wed, 03 Jan 2024 11:00:00 GMT", "zzz"))
    assert a == b and "'message': 'Namespace not found'" in a and "content-type" not in a
    # A tool's arguments that happen to have a key named like a kept one are data, not an error body.
    args = "Invalid arguments for tool call call_1: {'order_id': None, 'reason': '%s'}"
    assert template(args % "damaged") == template(args % "late") == "Invalid arguments for tool call <*>"


def test_an_unbalanced_body_falls_back_to_masking() -> None:
    cut = "Error code: 500 - {'error': {'message': 'upstream failed', 'type': 'server_error'"
    assert template(cut) == template(cut.replace("upstream", "downstream"))


def _kept_apart(groups: list, tags: set[str]) -> dict[str, set[str]]:
    """For each predicted group of the tagged failures, the true groups in it (within its family)."""
    rows = [r for seed in (1, 2) for r in generate(groups, 3000, seed) if r.tag in tags]
    by_family: dict[tuple[str, str], list] = defaultdict(list)
    for r in rows:
        by_family[r.family].append(r)
    mixed: dict[str, set[str]] = {}
    for family, members in by_family.items():
        single = {r.message: template(r.message) for r in members}
        keys = group_family({t: (t, 0) for t in set(single.values())})
        truth: dict[str, set[str]] = defaultdict(set)
        for r in members:
            truth[keys[single[r.message]][0]].add(r.group)
        mixed.update({f"{family}: {k}": v for k, v in truth.items() if len(v) > 1})
    return mixed


@pytest.mark.parametrize("groups", [TUNE, SCORE], ids=["tune", "score"])
def test_no_group_mixes_provider_errors_of_different_kinds(groups: list) -> None:
    """On the generated agent corpus (both sets), no signature holds two kinds of provider error."""
    assert _kept_apart(groups, {"provider-body", "rate-quota"}) == {}
