"""Over a real store: a merged group keeps its oldest member's id, new variants join it under that id,
every member's id still finds the group, and a version-1 id (before signature version 2) maps to today's."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path

import pytest

from tracemend.analyze import analyze, list_signatures
from tracemend.analyze.legacy import merge_templates_v1, signature_id_v1, template_v1
from tracemend.analyze.migrate import resolve_signature
from tracemend.analyze.select import select_finding
from tracemend.analyze.signatures import signature_of, signature_parts
from tracemend.analyze.ungated import finding_from_store
from tracemend.records import Trace
from tracemend.store import Store

from helpers.traffic import NEW, deploy_time, make_failure, traffic

DEPLOY = deploy_time()
LATER = DEPLOY + timedelta(hours=3)
USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace"]


def _denied(rng: random.Random, user: str, when, commit: str = NEW) -> Trace:
    spec = (
        "PermissionError",
        lambda r, u=user: f"Permission denied for user {u} on /srv/{r.randrange(99)}.txt",
        "agent.tools.files",
        "read",
    )
    return make_failure(rng, spec, when, commit)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "keys.db")
    s.add_traces(traffic(deploy=DEPLOY, failure_rate=0.0, seed=21))
    yield s
    s.close()


def test_a_merged_group_is_keyed_by_its_oldest_member_and_new_variants_join_it(store: Store) -> None:
    rng = random.Random(3)
    first = [_denied(rng, u, DEPLOY + timedelta(minutes=2 + i)) for i, u in enumerate(USERS[:5])]
    store.add_traces(first)
    oldest = signature_of(first[0]).signature_id
    before = analyze(store, now=LATER)
    assert len(before.findings) == 1
    group = before.findings[0].signature
    assert group.signature_id == oldest
    assert group.template == "Permission denied for user <*> on <*>"
    assert sorted(group.aliases) == sorted({signature_of(t).signature_id for t in first} - {oldest})

    # Two new users later: they join the group; its id does not change.
    store.add_traces([_denied(rng, u, DEPLOY + timedelta(minutes=30 + i)) for i, u in enumerate(USERS[5:])])
    after = analyze(store, now=LATER)
    assert [f.signature.signature_id for f in after.findings] == [oldest]
    assert after.findings[0].window_count == 7 and len(after.findings[0].signature.aliases) == 6
    listed = list_signatures(store)
    assert [r.signature.signature_id for r in listed] == [oldest]


def test_every_member_id_and_prefix_finds_the_group(store: Store) -> None:
    rng = random.Random(4)
    traces = [_denied(rng, u, DEPLOY + timedelta(minutes=5 + i)) for i, u in enumerate(USERS)]
    store.add_traces(traces)
    oldest = signature_of(traces[0]).signature_id
    young = signature_of(traces[-1]).signature_id
    resolved = resolve_signature(store, young[:8])
    assert resolved is not None and resolved.version == 2
    assert resolved.group.signature.signature_id == oldest and young in resolved.members
    assert select_finding(store, signature=young).signature.signature_id == oldest
    ungated = finding_from_store(store, signature=young)
    assert ungated.signature.signature_id == oldest and ungated.window_count == len(USERS)
    by_trace = finding_from_store(store, trace_id=traces[-1].trace_id)
    assert by_trace.signature.signature_id == oldest and by_trace.example_trace_ids[0] == traces[-1].trace_id


def _v1_ids(trace: Trace) -> str:
    error = json.loads(trace.error.model_dump_json()) if trace.error else None
    kind, _k, types, frame, tmpl = signature_parts(
        error, trace.status, trace.entry_point, {}, None, template_v1
    )
    return signature_id_v1(kind, types, frame, tmpl)


def test_a_version_1_id_maps_to_the_version_2_group(store: Store) -> None:
    rng = random.Random(5)
    body = (
        "Error code: 429 - {'error': {'message': 'Rate limit reached for gpt-4o in organization org-%s on tokens "
        "per min (TPM): Limit 30000, Used %d.', 'type': 'tokens', 'param': None, 'code': 'rate_limit_exceeded'}}"
    )
    quota = "Error code: 429 - {'error': {'message': 'You exceeded your current quota.', 'type': 'insufficient_quota'}}"
    specs = [
        (
            "openai.RateLimitError",
            lambda r: body % (f"{r.randrange(16**6):06x}", r.randrange(99999)),
            "agent.llm",
            "complete",
        ),
        ("openai.RateLimitError", lambda r: quota, "agent.llm", "complete"),
    ]
    traces = [make_failure(rng, specs[i % 2], DEPLOY + timedelta(minutes=3 + i), NEW) for i in range(8)]
    store.add_traces(traces)
    v1 = _v1_ids(traces[0])
    # Version 1 masked the whole body: quota and rate limit were one signature.
    assert v1 == _v1_ids(traces[1])
    assert signature_of(traces[0]).signature_id != signature_of(traces[1]).signature_id
    resolved = resolve_signature(store, v1)
    assert resolved is not None and resolved.version == 1
    # The old id names the failures it used to; they are two groups now, and the larger one is named.
    assert resolved.group.signature.signature_id in {signature_of(t).signature_id for t in traces[:2]}
    assert select_finding(store, signature=v1).signature.signature_id == resolved.group.signature.signature_id


def test_a_version_1_merged_id_maps_too(store: Store) -> None:
    rng = random.Random(6)
    traces = [_denied(rng, u, DEPLOY + timedelta(minutes=3 + i)) for i, u in enumerate(USERS[:5])]
    store.add_traces(traces)
    templates = {template_v1(t.error.message) for t in traces if t.error}
    merged = set(merge_templates_v1(templates).values())
    assert len(merged) == 1
    error = json.loads(traces[0].error.model_dump_json())
    kind, _k, types, frame, _t = signature_parts(error, "error", "agent.main:run", {}, None, template_v1)
    v1_merged = signature_id_v1(kind, types, frame, merged.pop())
    resolved = resolve_signature(store, v1_merged)
    assert resolved is not None and resolved.version == 1
    assert resolved.members >= {signature_of(t).signature_id for t in traces}


def test_an_unknown_signature_is_none(store: Store) -> None:
    assert resolve_signature(store, "ffffffffffff") is None
