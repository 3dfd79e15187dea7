"""The shop's records the tools read (a stand-in for the order database and the policy service)."""

from __future__ import annotations

ORDERS: dict[str, dict[str, object]] = {
    "A1001": {
        "customer": "c-17",
        "item": "trail shoes",
        "status": "delivered",
        "days_since_delivery": 12,
        "region": "us",
    },
    "A1002": {
        "customer": "c-17",
        "item": "rain jacket",
        "status": "shipped",
        "days_since_delivery": None,
        "region": "us",
    },
    "A1003": {
        "customer": "c-23",
        "item": "tent",
        "status": "delivered",
        "days_since_delivery": 45,
        "region": "eu",
    },
    "A1004": {
        "customer": "c-31",
        "item": "headlamp",
        "status": "processing",
        "days_since_delivery": None,
        "region": "uk",
    },
    "A1005": {
        "customer": "c-31",
        "item": "sleeping bag",
        "status": "delivered",
        "days_since_delivery": 3,
        "region": "uk",
    },
    "A1006": {
        "customer": "c-40",
        "item": "stove",
        "status": "delivered",
        "days_since_delivery": 20,
        "region": "eu",
    },
    "A1007": {
        "customer": "c-52",
        "item": "backpack",
        "status": "delivered",
        "days_since_delivery": 8,
        "region": "ca",
    },
}

# Refund windows in days, by the region code orders carry.
REFUND_WINDOWS: dict[str, int] = {"us": 30, "eu": 30, "uk": 30, "ca": 30}

FAQ: dict[str, str] = {
    "shipping": "Standard shipping takes 3-5 business days; express takes 1-2.",
    "exchange": "Exchanges are free within the refund window; start one from your order page.",
    "warranty": "Gear carries a 1-year warranty against manufacturing defects.",
    "hours": "Support answers every day from 8:00 to 20:00 CET.",
}
