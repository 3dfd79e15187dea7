"""A corpus of secrets as apps meet them: each kind as a text the app handles and the parts that must never
be stored, exported or shown to a model. The values are made up (built by concatenation so that secret
scanners do not flag this file) but have the real shapes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Secret:
    kind: str
    text: str  # what the app has in hand: a message, a header, a config value
    needles: tuple[str, ...]  # substrings that must appear nowhere


def _s(kind: str, text: str, *needles: str) -> Secret:
    return Secret(kind, text, needles)


_AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYzq81XKEYq9"
_AZURE_KEY = "Zm9vYmFyYmF6cXV4" * 5 + "Ab3dEf" + "=="
_PEM_BODY = "MIIEowIBAAKCAQEA7q" + "Zq81xKpLmN4vB2cD9eF0gH1iJ3kL5mN7oP9qR1sT3uV5w"

CORPUS: tuple[Secret, ...] = (
    _s("openai", "calling with sk-proj-" + "Zq81xKpLmN4vB2cD9eF0gH1i", "Zq81xKpLmN4vB2cD9eF0gH1i"),
    _s("anthropic", "key sk-ant-api03-" + "Yw72hGtRkS3aQ9pLmZ0xC4v", "Yw72hGtRkS3aQ9pLmZ0xC4v"),
    _s("aws_access_key_id", "AWS key AKIA" + "Q7ZK4M2XW9P3N5RT in use", "AKIAQ7ZK4M2XW9P3N5RT"),
    _s("aws_secret_pair", "aws_secret_access_key=" + _AWS_SECRET, _AWS_SECRET),
    _s("aws_secret_bare", "signature mismatch for " + _AWS_SECRET + " (check it)", _AWS_SECRET),
    _s(
        "gcp_api_key",
        "maps key AIza" + "SyD4q7Zk2Lm9Xw3Pv8Rt1Yu6Io0Pa5Sd2Fg",
        "SyD4q7Zk2Lm9Xw3Pv8Rt1Yu6Io0Pa5Sd2Fg",
    ),
    _s("gcp_oauth", "token ya29." + "a0AfB_byC7dE9fG1hI3jK5lM7nO9pQ", "a0AfB_byC7dE9fG1hI3jK5lM7nO9pQ"),
    _s(
        "azure_storage",
        "DefaultEndpointsProtocol=https;AccountName=shop;AccountKey=" + _AZURE_KEY + ";EndpointSuffix=core",
        _AZURE_KEY[:40],
    ),
    _s(
        "azure_sas",
        "https://shop.blob.core.windows.net/c/f?sv=2022&sig=" + "q81xKpLm%2BN4vB2cD9eF0g%3D",
        "q81xKpLm",
    ),
    _s(
        "github",
        "push with ghp_" + "Zq81xKpLmN4vB2cD9eF0gH1iJ3kL5mN7oP9q",
        "Zq81xKpLmN4vB2cD9eF0gH1iJ3kL5mN7oP9q",
    ),
    _s(
        "github_fine",
        "github_pat_" + "11ABCDE0Y0Zq81xKpLmN4v_B2cD9eF0gH1iJ3k",
        "11ABCDE0Y0Zq81xKpLmN4v_B2cD9eF0gH1iJ3k",
    ),
    _s("gitlab", "CI token glpat-" + "Zq81xKpLmN4vB2cD9eF0", "Zq81xKpLmN4vB2cD9eF0"),
    _s("slack_token", "bot xoxb-" + "1234567890-0987654321-Zq81xKpLmN4v", "0987654321-Zq81xKpLmN4v"),
    _s(
        "slack_webhook",
        "post to https://hooks.slack.com/services/" + "T0ZQ81XK/B0PLMN4V/Zq81xKpLmN4vB2cD9eF0gH1i",
        "Zq81xKpLmN4vB2cD9eF0gH1i",
    ),
    _s("stripe", "charge via sk_live_" + "4eC39HqLyjWDarjtT1zdp7dcZq", "4eC39HqLyjWDarjtT1zdp7dcZq"),
    _s(
        "jwt",
        "session eyJhbGciOiJIUzI1NiJ9." + "eyJzdWIiOiJaUTgxIiwibmFtZSI6IkFkYSJ9.Zq81xKpLmN4vB2cD9eF0gH1iJ3k",
        "eyJzdWIiOiJaUTgxIiwibmFtZSI6IkFkYSJ9",
    ),
    _s(
        "pem_private_key",
        "-----BEGIN RSA PRIVATE KEY-----\n"
        + _PEM_BODY
        + "\n"
        + _PEM_BODY[::-1]
        + "\n-----END RSA PRIVATE KEY-----",
        _PEM_BODY,
        _PEM_BODY[::-1],
    ),
    _s("password_pair", "login failed: password=" + "pw-Zq81xK for ada", "pw-Zq81xK"),
    _s("secret_pair", 'settings {"client_secret": "' + "cs-Yw72hGt" + '"}', "cs-Yw72hGt"),
    _s("token_pair", "retry with token: " + "tk-Pv8Rt1Yu", "tk-Pv8Rt1Yu"),
    _s("basic_auth", "Authorization: Basic " + "YWRhOnB3LVpxODF4S0xt", "YWRhOnB3LVpxODF4S0xt"),
    _s("bearer", "header Bearer " + "tok.Zq81xKpLmN4v.B2cD9", "tok.Zq81xKpLmN4v.B2cD9"),
    _s("url_userinfo", "fetch https://ada:" + "pw-Xc4vB2cD" + "@api.shop.example/v1", "pw-Xc4vB2cD"),
    _s("dsn", "connect postgres://app:" + "db-Lm9Xw3Pv" + "@db.internal:5432/shop", "db-Lm9Xw3Pv"),
    _s(
        "sendgrid",
        "mail SG." + "Zq81xKpLmN4vB2cD9eF0gH." + "1iJ3kL5mN7oP9qR1sT3uV5wX7yZ9aB1cD3eF5gH7iJ9k",
        "1iJ3kL5mN7oP9qR1sT3uV5wX7yZ9aB1cD3eF5gH7iJ9k",
    ),
    _s("huggingface", "hub hf_" + "Zq81xKpLmN4vB2cD9eF0gH1iJ3kL5mN7", "Zq81xKpLmN4vB2cD9eF0gH1iJ3kL5mN7"),
    # The user's own, from configure(redact_patterns=[r"ACME-[0-9]{6}"], redact_keys=["ssn"]).
    _s("user_pattern", "ticket ACME-" + "481516 opened", "ACME-481516"),
    _s("user_key", "customer ssn: " + "078-05-1120", "078-05-1120"),
)
USER_PATTERNS = [r"ACME-[0-9]{6}"]
USER_KEYS = ["ssn"]
