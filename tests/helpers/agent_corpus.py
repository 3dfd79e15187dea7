"""A labelled corpus of LLM-agent failures, generated from group templates and a seed.

Each ``Group`` is one true group: the failures that need the same action. Its message is a format
``string.Template`` whose ``${slot}`` fields are filled per message from the generators below: values that vary
freely (ids, numbers, hosts, paths, durations), words from an open set (hallucinated tool names), and
words from a small closed set drawn once per group (user, table, type, field names: a code path sees a
few of them). ``${slot_opt}`` is empty for a share of the messages (a slot whose value is sometimes empty).

``agent_groups`` holds two disjoint sets of groups: ``TUNE`` (rules may be chosen while looking at
them) and ``SCORE`` (only scored, never tuned on). ``bench/grouping.py`` reports per-tag grouping
accuracy on both; ``tests/analyze`` checks the provider-error cases on them.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Group:
    name: str
    tag: str
    etype: str  # the exception type chain, outermost first, " <- " between causes
    frame: str  # module:function of the top in-app frame
    text: str  # a string.Template: ${slot} fields, $$ for a dollar
    weight: float = 1.0


@dataclass(frozen=True)
class Failure:
    group: str
    tag: str
    etype: str
    frame: str
    message: str

    @property
    def family(self) -> tuple[str, str]:
        return (self.etype, self.frame)


_ALNUM = string.ascii_letters + string.digits
_WORDS = [
    "alpha",
    "amber",
    "atlas",
    "beacon",
    "birch",
    "cedar",
    "delta",
    "ember",
    "falcon",
    "harbor",
    "juniper",
    "kestrel",
    "lumen",
    "maple",
    "meadow",
    "nimbus",
    "onyx",
    "orbit",
    "pebble",
    "quartz",
    "raven",
    "sierra",
    "summit",
    "tango",
    "tundra",
    "umber",
    "vertex",
    "willow",
    "zephyr",
]
_TLDS = ["com", "io", "net", "org", "dev", "ai", "hk", "asia", "de", "co.uk", "internal", "svc.cluster.local"]
_MODELS = [
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-nano",
    "o3-mini",
    "gpt-3.5-turbo-0125",
    "claude-3-5-sonnet-20241022",
    "claude-sonnet-4-20250514",
    "gemini-1.5-pro-002",
]
# Hallucinated tool names: an open set, some of several words.
TOOL_NAMES = [
    "Google Search",
    "google_search",
    "Search",
    "web_search",
    "Bing Search",
    "Wikipedia",
    "wikipedia_lookup",
    "Python REPL",
    "python",
    "Calculator",
    "calculator_tool",
    "browser",
    "Web Browser",
    "search_internet",
    "DuckDuckGo Search",
    "get_current_weather",
    "weather",
    "code_interpreter",
    "file_search",
    "SQL Query",
    "run_sql",
    "send_email",
    "Email Sender",
    "lookup_order",
    "find_customer",
    "knowledge_base",
    "retriever",
    "read_file",
    "shell",
    "Terminal",
    "HTTP Request",
    "news_search",
    "stock_price",
    "translate_text",
    "Summarizer",
]
# Closed sets: each group draws a few of these once.
CLOSED = {
    "user": ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "mallory", "trent"],
    "table": ["orders", "users", "invoices", "sessions", "embeddings", "documents", "tickets", "payments"],
    "column": ["email", "created_at", "status", "customer", "total", "region", "sku"],
    "jtype": ["datetime", "Decimal", "UUID", "set", "bytes", "date", "ndarray", "Timestamp", "ObjectId"],
    "qualtype": ["decimal.Decimal", "uuid.UUID", "datetime.date", "numpy.ndarray", "pathlib.PosixPath"],
    "field": ["query", "city", "limit", "order_id", "email", "start_date", "currency"],
    "kwarg": ["top_k", "filters", "namespace", "timeout", "stream", "temperature"],
    "var": ["context", "question", "history", "user_name", "documents", "language"],
    "workspace": ["acme", "globex", "initech", "umbrella", "hooli", "stark"],
    "agent": ["Assistant", "Triage", "Billing", "Researcher"],
    "server": ["github", "filesystem", "postgres", "browser", "slack"],
    "collection": ["docs", "faq", "kb_articles", "support_tickets", "products"],
    "fn": ["search_docs", "get_weather", "create_ticket", "lookup_order", "send_email"],
    "word": ["ten", "five", "many", "abc", "none", "twenty", "n/a"],
    "fmt": ["json", "markdown", "csv", "yaml"],
    "city": ["Paris", "Tokyo", "Lagos", "Lima", "Oslo", "Hanoi", "Austin"],
}
CLOSED_PICK = 3  # distinct values a group sees of a closed set


def _alnum(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_ALNUM) for _ in range(n))


def _host(rng: random.Random) -> str:
    parts = [rng.choice(_WORDS) for _ in range(rng.randint(1, 3))]
    return ".".join([*parts, rng.choice(_TLDS)])


def _secs(rng: random.Random) -> str:
    shape = rng.randrange(4)
    if shape == 0:
        return f"{rng.uniform(0.1, 9):.2f}s"
    if shape == 1:
        return f"{rng.randint(5, 999)}ms"
    if shape == 2:
        return f"{rng.randint(1, 9)}m{rng.uniform(0, 59):.1f}s"
    return f"{rng.randint(1, 60)}s"


def _path(rng: random.Random) -> str:
    name = f"{rng.choice(_WORDS)}_{rng.randint(1, 999)}.{rng.choice(['json', 'csv', 'txt', 'pdf'])}"
    roots = ["/var/data/", "/tmp/agent/", "./workspace/", "/home/app/uploads/", "C:\\data\\"]
    return rng.choice(roots) + name


def _url(rng: random.Random) -> str:
    segs = "/".join(rng.choice(["v1", "api", "items", "orders", "users", "search"]) for _ in range(2))
    return f"https://{_host(rng)}/{segs}/{rng.randint(1, 99999)}"


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 6)))


GENERATORS: dict[str, Callable[[random.Random], str]] = {
    "n": lambda r: str(r.randint(0, 99999)),
    "small": lambda r: str(r.randint(1, 40)),
    "big": lambda r: str(r.randint(100_000, 250_000)),
    "thousands": lambda r: f"{r.randint(10, 900)},000",
    "secs": _secs,
    "org": lambda r: "org-" + _alnum(r, 24),
    "req": lambda r: "req_" + _alnum(r, 24),
    "call": lambda r: "call_" + _alnum(r, 24),
    "toolu": lambda r: "toolu_01" + _alnum(r, 22),
    "hex": lambda r: f"{r.getrandbits(48):x}",
    "uuid": lambda r: (
        f"{r.getrandbits(32):08x}-{r.getrandbits(16):04x}-4{r.getrandbits(12):03x}-a{r.getrandbits(12):03x}-{r.getrandbits(48):012x}"
    ),
    "model": lambda r: r.choice(_MODELS),
    "host": _host,
    "ip": lambda r: ".".join(str(r.randint(1, 254)) for _ in range(4)),
    "port": lambda r: str(r.choice([443, 80, 8080, 6333, 5432, 8000])),
    "url": _url,
    "path": _path,
    "email": lambda r: f"{r.choice(_WORDS)}.{r.choice(_WORDS)}@{_host(r)}",
    "date": lambda r: (
        f"2025-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:00Z"
    ),
    "text": _text,
    "tool": lambda r: r.choice(TOOL_NAMES),
    "key": lambda r: "sk-proj-****" + _alnum(r, 4),
    "channel": lambda r: "C0" + _alnum(r, 9).upper(),
}


def _fill(group: Group, rng: random.Random, closed: dict[str, list[str]]) -> str:
    template = string.Template(group.text)
    values: dict[str, str] = {}
    for field in template.get_identifiers():
        name = field.removesuffix("_opt")
        if field.endswith("_opt") and rng.random() < 0.3:
            values[field] = ""
        elif name in CLOSED:
            values[field] = rng.choice(closed[name])
        else:
            values[field] = GENERATORS[name](rng)
    return template.substitute(values)


def generate(groups: Sequence[Group], total: int, seed: int) -> list[Failure]:
    """About ``total`` failures of ``groups`` in a shuffled order, reproducible from ``seed``.

    Group sizes follow a Zipf-like law (a few frequent groups, a tail of rare ones), scaled by each
    group's weight, at least one failure each.
    """
    rng = random.Random(seed)
    order = list(range(len(groups)))
    rng.shuffle(order)
    raw = [groups[i].weight / (rank + 1) ** 0.8 for rank, i in enumerate(order)]
    scale = total / sum(raw)
    rows: list[Failure] = []
    for (rank, i), share in zip(enumerate(order), raw, strict=True):
        del rank
        group = groups[i]
        closed = {name: rng.sample(pool, min(CLOSED_PICK, len(pool))) for name, pool in CLOSED.items()}
        for _ in range(max(1, round(share * scale))):
            rows.append(Failure(group.name, group.tag, group.etype, group.frame, _fill(group, rng, closed)))
    rng.shuffle(rows)
    return rows
