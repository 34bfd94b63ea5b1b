"""The HTTP API's stored answers to ``Idempotency-Key`` requests, kept no longer than they serve a retry.

A replayed POST answers what the first one did, so its answer — which may name a customer — is stored for
``api.idempotency_hours``. Two things keep that store from holding a person beyond its purpose: the worker's
``api.idempotency_purge`` job deletes expired answers, and an erasure replaces every stored answer about the
erased person with a ``410 Gone`` problem, so a late retry is still not run twice and says why.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit.core import tables as t
from crmkit.core.jobs import Job

if TYPE_CHECKING:
    from crmkit.crm import CRM

#: The setting (hours) an answer is kept, read by the API and by the purge; 24 unless set.
HOURS_SETTING = "api.idempotency_hours"
DEFAULT_HOURS = 24
#: Values shorter than this match a whole JSON string only (``An`` must not match every ``Anh``).
_SUBSTRING_MIN = 5
#: What a retry of a request whose answer concerned an erased customer receives instead of that answer.
ERASED_STATUS = 410
ERASED_BODY = json.dumps(
    {
        "type": "about:blank",
        "title": "the answer to this request concerned a customer who has since been erased",
        "status": ERASED_STATUS,
    },
    separators=(",", ":"),
).encode()


def kept_hours(crm: CRM) -> int:
    """How many hours an answer is kept (the ``api.idempotency_hours`` setting)."""
    return int(crm.settings.get(HOURS_SETTING, DEFAULT_HOURS))


def purge_expired(crm: CRM) -> int:
    """Delete the answers older than the keeping time; how many went. The worker runs it hourly."""
    cutoff = crm.now() - timedelta(hours=kept_hours(crm))
    with crm.transaction() as session:
        k = t.idempotency_keys.c
        done = session.connection().execute(t.idempotency_keys.delete().where(k.created_at < cutoff))
    return done.rowcount or 0


#: The worker's job that deletes expired answers.
PURGE_JOB = Job(
    "api.idempotency_purge",
    every=timedelta(hours=1),
    run=purge_expired,
    description="delete the HTTP API's stored answers older than api.idempotency_hours",
)


def forget_person(conn: sa.Connection, customer_ids: Iterable[int], values: Iterable[str]) -> int:
    """Replace every stored answer that names one of ``customer_ids`` (as a ``customer_id``) or holds one of the
    person's ``values`` (name, addresses, identifiers) with the erased-customer problem; how many were replaced.

    Runs in the erasure's transaction, before the person's values are wiped elsewhere.
    """
    ids = set(customer_ids)
    needles = {_folded(v) for v in values if v and v.strip()}
    k = t.idempotency_keys.c
    hits = [
        row.id
        for row in conn.execute(sa.select(k.id, k.body).where(k.status != ERASED_STATUS)).yield_per(500)
        if _names(bytes(row.body), ids, needles)
    ]
    for start in range(0, len(hits), 500):
        conn.execute(
            t.idempotency_keys.update()
            .where(k.id.in_(hits[start : start + 500]))
            .values(status=ERASED_STATUS, body=ERASED_BODY, headers={"Content-Type": "application/problem+json"})
        )
    return len(hits)


def _names(body: bytes, ids: set[int], needles: set[str]) -> bool:
    """Whether an answer's body concerns the person: a ``customer_id`` of theirs, or one of their values."""
    try:
        document: Any = json.loads(body)
    except ValueError:
        text = _folded(body.decode("utf-8", "replace"))
        return any(len(n) >= _SUBSTRING_MIN and n in text for n in needles)
    for key, value in _leaves(document):
        if isinstance(value, str):
            folded = _folded(value)
            if folded in needles or any(len(n) >= _SUBSTRING_MIN and n in folded for n in needles):
                return True
        elif key.endswith("customer_id") and value in ids and not isinstance(value, bool):
            return True
    return False


def _leaves(node: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """Every scalar of a JSON document with the key it sits under (a list's items under the list's key)."""
    if isinstance(node, dict):
        for name, value in node.items():
            yield from _leaves(value, str(name))
    elif isinstance(node, list):
        for value in node:
            yield from _leaves(value, key)
    else:
        yield key, node


def _folded(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold().strip()
