"""SQL pieces shared by segments, runs and the dispatcher: primary contacts and deterministic buckets."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from crmkit.plugin_api import core_tables as core

#: Buckets a customer is hashed into for the holdout and the A/B split (basis points).
BUCKETS = 10_000
_MASK31, _MASK32 = 2**31, 2**32
#: Odd multipliers of Fibonacci-style hashing; a different one per purpose keeps the holdout and
#: the variant split independent of each other.
MULTIPLIERS = {"holdout": 2654435761, "variant": 2246822519}


def split_bounds(weights: Sequence[int]) -> list[int]:
    """Where each variant's buckets end, by weight (all but the last variant, which takes the rest)."""
    total, upper, bounds = sum(weights), 0, []
    for weight in weights[:-1]:
        upper += weight
        bounds.append(upper * BUCKETS // total)
    return bounds


def primary_contact(kind: str) -> sa.ScalarSelect[Any]:
    """The customer's first e-mail or phone (position 0 is the primary), correlated on ``customers.id``."""
    p = core.contact_points.c
    return (
        sa.select(p.value)
        .where(p.customer_id == core.customers.c.id, p.kind == kind)
        .order_by(p.position)
        .limit(1)
        .scalar_subquery()
    )


def seed(campaign_id: int, purpose: str) -> int:
    """A per-campaign seed (below 2**30) so that each campaign draws its own holdout and split."""
    digest = hashlib.sha256(f"crmkit-campaign:{campaign_id}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 2**30


def bucket(customer_id: int, campaign_id: int, purpose: str) -> int:
    """The bucket (0–9999) of a customer for a campaign: the same in Python as :func:`bucket_sql` in SQL."""
    hashed = ((customer_id + seed(campaign_id, purpose)) % _MASK31) * MULTIPLIERS[purpose] % _MASK32
    return hashed * BUCKETS // _MASK32


def bucket_sql(customer_id: Any, campaign_id: int, purpose: str) -> sa.ColumnElement[int]:
    """:func:`bucket` as a SQL expression (integer arithmetic only: the same result on SQLite and PostgreSQL)."""

    def number(value: int) -> Any:
        return sa.literal(value, sa.BigInteger)

    hashed = ((customer_id + number(seed(campaign_id, purpose))) % number(_MASK31)) * number(MULTIPLIERS[purpose])
    return (hashed % number(_MASK32)) * number(BUCKETS) // number(_MASK32)
