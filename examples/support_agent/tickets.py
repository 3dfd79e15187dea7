"""Sample traffic: tickets as customers write them (used by the demo and the tests)."""

from __future__ import annotations

TICKETS: list[tuple[str, str]] = [
    ("Where is my order A1002?", "c-17"),
    ("Hi, can I get a refund for order A1001? The shoes are too small.", "c-17"),
    ("I want my money back for #a1003, the tent leaks", "c-23"),
    ("Status of A1004 please", "c-31"),
    ("Refund for A1005 please, wrong size", "c-31"),
    ("Please refund order A1004, I changed my mind", "c-31"),
    ("Can I return order A1006?", "c-40"),
    ("Refund A1007, the straps broke", "c-52"),
    ("How long does shipping take?", "c-60"),
    ("Do you offer a warranty on stoves?", "c-61"),
    ("What are your support hours?", "c-62"),
    ("Can I exchange a jacket for a bigger size?", "c-64"),
]
