"""Per-message templates: the shapes that split or merged groups on logs the rules were not tuned on."""

from __future__ import annotations

import pytest

from tracemend.analyze.masks import Masker, MaskRules
from tracemend.analyze.signatures import template


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # host names under any top-level domain, with or without a port
        ("proxy.cse.example.edu.hk:5070 open through proxy", "www.example.asia:443 open through proxy"),
        ("connect to db.internal.example.co:5432 failed", "connect to 10.0.0.7:5432 failed"),
        ("resolve gateway.hk failed", "resolve api.example.com failed"),
        # a comparison sign stuck to a value leaves no "<<*>"
        ("lifetime <1 sec", "lifetime 00:01"),
        # a slot that is empty this time
        ("connection from 10.0.0.1 () at 10:00", "connection from 10.0.0.2 (host.example.org) at 11:00"),
        # file names are values
        ("cannot open config.yaml", "cannot open settings.json"),
        # a quoted name is a value whatever its length
        ("Action 'web_search' don't exist", "Action 'Google Search' don't exist"),
    ],
)
def test_same_slot_same_template(a: str, b: str) -> None:
    assert template(a) == template(b)
    assert "<<*>" not in template(a) and "<*>>" not in template(a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # a quoted request line keeps its method
        (
            '10.0.0.1 "GET /v2/42/servers HTTP/1.1" status: 200',
            '10.0.0.1 "POST /v2/42/servers HTTP/1.1" status: 200',
        ),
        # a quoted status line keeps its reason phrase
        (
            "Client error '404 Not Found' for url 'https://a.io/x'",
            "Client error '429 Too Many Requests' for url 'https://a.io/x'",
        ),
        # key=value keeps the value of a key that says what kind of failure it is
        (
            "Field required [type=missing, input_value={}, input_type=dict]",
            "Input invalid [type=int_parsing, input_value='x', input_type=str]".replace(
                "Input invalid", "Field required"
            ),
        ),
    ],
)
def test_discriminating_text_stays(a: str, b: str) -> None:
    assert template(a) != template(b)


def test_rules_are_data() -> None:
    line = '10.0.0.1 "GET /v2/42/servers HTTP/1.1" status: 200'
    assert Masker(MaskRules(quotes="whole")).template(line) == "<*> status: <*>"
    assert Masker(MaskRules(quotes="words")).template(line) == '<*> "GET <*> HTTP/<*>" status: <*>'
    assert Masker(MaskRules(dotted=0)).template("cannot open config.yaml") == "cannot open config.yaml"
