"""Judging rules from the user's repository: pyproject tables and rules files, and clear errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tracemend.analyze import Rule, load_rules, select_rules
from tracemend.errors import ConfigError


def _project(tmp_path: Path, table: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent(table))
    return tmp_path


def test_rules_from_pyproject_and_a_rules_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(
        tmp_path,
        """
        [tool.tracemend]
        rules_file = "quality/rules.yaml"

        [[tool.tracemend.rules]]
        name = "refund-window"
        assertion = '''
          The reply never approves a refund
          for an order older than 30 days.'''
        entry_points = ["support.agent:*"]
        sample_rate = 0.2
        max_calls_per_day = 300
        max_cost_per_day = 0.5
        """,
    )
    (root / "quality").mkdir()
    (root / "quality" / "rules.yaml").write_text(
        textwrap.dedent(
            """
            rules:
              - name: cites-context
                assertion: Every claim in the reply is supported by the retrieved documents.
                span_kinds: [llm]
                samples: 3
            """
        )
    )
    refund, cites = load_rules(root)
    assert refund.name == "refund-window" and refund.sample_rate == 0.2
    assert refund.assertion == "The reply never approves a refund for an order older than 30 days."
    assert refund.applies_to("support.agent:answer") and not refund.applies_to("billing.agent:answer")
    assert (refund.daily_calls(), refund.max_cost_per_day) == (300, 0.5)
    assert cites.span_kinds == ["llm"] and cites.samples == 3 and cites.applies_to("anything:at_all")
    assert cites.daily_calls() == 1000  # the judge_daily_calls default
    monkeypatch.setenv("TRACEMEND_JUDGE_DAILY_CALLS", "40")
    assert cites.daily_calls() == 40
    assert select_rules([refund, cites], ["cites-context"]) == [cites]
    with pytest.raises(ConfigError, match="no judging rule named 'nope'.*cites-context, refund-window"):
        select_rules([refund, cites], ["nope"])
    toml = root / "more.toml"
    toml.write_text('[[rules]]\nname = "polite"\nassertion = "The reply is polite."\n')
    assert [r.name for r in load_rules(root, path=toml)] == ["polite"]


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ('[[tool.tracemend.rules]]\nname = "x"\n', r"rule 'x': assertion: Field required"),
        ('[[tool.tracemend.rules]]\nname = "x"\nassertion = "a"\nsample_rate = 0\n', r"sample_rate"),
        ('[[tool.tracemend.rules]]\nname = "a b"\nassertion = "a"\n', r"letters, digits"),
        ('[[tool.tracemend.rules]]\nname = "x"\nassertion = "a"\nsample = 1\n', r"sample: Extra inputs"),
        ('[[tool.tracemend.rules]]\nname = "x"\nassertion = "a"\nspan_kinds = ["llms"]\n', r"span_kinds"),
        (
            '[[tool.tracemend.rules]]\nname = "x"\nassertion = "a"\n[[tool.tracemend.rules]]\nname = "x"\n'
            'assertion = "b"\n',
            r"two judging rules are named 'x'",
        ),
        ('[tool.tracemend]\nrules = "x"\n', r"rules must be a list"),
        ('[tool.tracemend]\nrules_file = "missing.toml"\n', r"cannot read the rules file"),
    ],
)
def test_bad_rules_are_usage_errors_naming_the_rule(tmp_path: Path, rules: str, message: str) -> None:
    root = _project(tmp_path, rules)
    with pytest.raises(ConfigError, match=message):
        load_rules(root)


def test_sampling_is_a_stable_fraction_independent_of_the_rest() -> None:
    rule = Rule(name="r", assertion="a", sample_rate=0.1)
    ids = [f"{i:032x}" for i in range(20_000)]
    picked = [i for i in ids if rule.sampled(i)]
    assert 1800 < len(picked) < 2200
    other = Rule(name="s", assertion="a", sample_rate=0.1)
    # Another rule samples other traces (so two rules at 10 % do not always judge the same tenth).
    assert len(set(picked) & {i for i in ids if other.sampled(i)}) < 400
    assert all(Rule(name="r", assertion="a", sample_rate=1.0).sampled(i) for i in ids[:100])
