"""Needs groups by k-means (setting ``needs_method = "kmeans"``; scikit-learn comes with the ``kmeans`` extra).

One feature row per customer with evidence, from what the rules read: share of spend per category bought,
``needs:`` tags, share of topic mentions per topic group. Each kind of evidence sums to 1 within a row and the
row is scaled to unit length, so customers are compared by the *mix* of their needs, not by how much they bought
or talked. Rows live in a sparse matrix (a few cells per customer, never a dict per customer), clustered with
``KMeans`` (fixed seed, explicit restarts) or, from ``MINI_BATCH_FROM`` customers, ``MiniBatchKMeans``. Each
cluster is named after its dominant features: ``kmeans:Điện thoại+service``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import sqlalchemy as sa
from scipy import sparse
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import normalize

SEED = 0  # fixed: the same evidence gives the same groups, run after run
N_INIT = 10  # KMeans restarts; the one with the lowest inertia is kept
#: Customers with evidence from which MiniBatchKMeans replaces KMeans: KMeans' time grows with customers × restarts,
#: but up to 1M it was as fast or faster here and found better groups (README, "Differentiate").
MINI_BATCH_FROM = 2_000_000
MINI_BATCH_SIZE = 4096  # customers per mini-batch
MINI_BATCH_N_INIT = 3
DOMINANT = 0.5  # a feature names its cluster when its weight in the centre is at least half the strongest one's
MIN_WEIGHT = 0.25  # … and at least this (≈ a quarter of the cluster is all about it); none: the cluster is "mixed"
MIXED = "mixed"
NAME_PARTS = 3  # at most this many features in a name
PREFIX = "kmeans:"
NAME_LENGTH = 100  # idic_profiles.needs
REASON_LENGTH = 300  # idic_profiles.needs_reason
READ_BATCH = 5000  # evidence rows fetched at a time


@attrs.frozen
class Features:
    """The feature matrix: row i is customer ``customer_ids[i]``, column j is evidence ``columns[j]``."""

    customer_ids: np.ndarray  # sorted int64
    matrix: sparse.csr_matrix  # customers × features, each row of unit length
    columns: tuple[tuple[str, str], ...]  # (kind, label): ("category", "Điện thoại"), ("topic", "service")…


@attrs.frozen
class Cluster:
    """One cluster: its needs group name, the reason written on its customers, and who they are."""

    name: str
    reason: str
    customer_ids: np.ndarray


def features(conn: sa.Connection, sources: Sequence[tuple[str, sa.Select[Any]]]) -> Features:
    """Read each source's ``(customer_id, label, weight)`` rows in batches into one sparse matrix: weights become
    shares within their kind (spend per category, mentions per topic group, 1/n per tag), rows unit length."""
    read: dict[str, tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], dict[str, int]]] = {}
    for kind, query in sources:
        ids, columns, weights, seen = read.setdefault(kind, ([], [], [], {}))
        for part in conn.execute(query.execution_options(yield_per=READ_BATCH)).partitions():
            ids.append(np.fromiter((row[0] for row in part), np.int64, len(part)))
            columns.append(np.fromiter((seen.setdefault(str(row[1]), len(seen)) for row in part), np.int64, len(part)))
            weights.append(np.fromiter((float(row[2]) for row in part), np.float64, len(part)))
    everyone = [array for ids, *_ in read.values() for array in ids]
    if not everyone:
        return Features(np.empty(0, np.int64), sparse.csr_matrix((0, 0)), ())
    customer_ids = np.unique(np.concatenate(everyone))
    n = len(customer_ids)
    labels: list[tuple[str, str]] = []
    rows, cols, values = [], [], []
    for kind, (ids, columns, weights, seen) in read.items():
        if not ids:
            continue
        # Columns in label order, whatever order the database returned the rows in.
        order = sorted(seen)
        renumber = np.empty(len(seen), np.int64)
        for position, label in enumerate(order):
            renumber[seen[label]] = len(labels) + position
        labels.extend((kind, label) for label in order)
        row = np.searchsorted(customer_ids, np.concatenate(ids))
        weight = np.concatenate(weights)
        rows.append(row)
        cols.append(renumber[np.concatenate(columns)])
        values.append(weight / np.bincount(row, weights=weight, minlength=n)[row])
    matrix = sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n, len(labels)), dtype=np.float64
    )
    matrix.sort_indices()
    return Features(customer_ids, normalize(matrix, norm="l2", copy=False), tuple(labels))


def cluster(found: Features, clusters: int) -> tuple[list[Cluster], dict[str, Any]]:
    """Cluster the customers into at most ``clusters`` clusters (fewer when fewer customers have evidence) and name
    each; returns the non-empty clusters and what the step report says about the clustering. Clusters with the
    same name (a manager could not tell them apart) end up as one needs group."""
    n = len(found.customer_ids)
    k = min(clusters, n)
    report: dict[str, Any] = {
        "clusters_requested": clusters,
        "clusters": k,
        "customers_clustered": n,
        "features": len(found.columns),
    }
    if n == 0:
        return [], {**report, "algorithm": None}
    model: KMeans | MiniBatchKMeans
    if n >= MINI_BATCH_FROM:
        model = MiniBatchKMeans(n_clusters=k, random_state=SEED, n_init=MINI_BATCH_N_INIT, batch_size=MINI_BATCH_SIZE)
    else:
        model = KMeans(n_clusters=k, random_state=SEED, n_init=N_INIT)
    with warnings.catch_warnings():
        # Fewer distinct customers than k: some clusters come out empty or twins, which naming merges below.
        warnings.simplefilter("ignore", ConvergenceWarning)
        assigned = model.fit_predict(found.matrix)
    result = []
    for number, size in enumerate(np.bincount(assigned, minlength=k)):
        if size:
            name, reason = _describe(found.columns, model.cluster_centers_[number], int(size))
            result.append(Cluster(name, reason, found.customer_ids[assigned == number]))
    return result, {**report, "algorithm": type(model).__name__}


def _describe(columns: Sequence[tuple[str, str]], centre: np.ndarray, size: int) -> tuple[str, str]:
    """(name, reason) of a cluster: its features weighing at least ``DOMINANT`` × the strongest and ``MIN_WEIGHT``,
    strongest first (weights rounded to 3 decimals so float noise cannot reorder them; ties by label)."""
    strongest = sorted(np.flatnonzero(centre > 0), key=lambda col: (-round(float(centre[col]), 3), columns[col]))
    floor = max(DOMINANT * float(centre[strongest[0]]), MIN_WEIGHT)
    parts: list[str] = []
    for col in strongest:
        label = columns[col][1]
        if len(parts) == NAME_PARTS or centre[col] < floor:
            break
        if label not in parts:
            parts.append(label)
    evidence = ", ".join(f"{columns[col][0]} {columns[col][1]} {centre[col]:.2f}" for col in strongest[:NAME_PARTS])
    return (PREFIX + ("+".join(parts) or MIXED))[:NAME_LENGTH], f"k-means cluster of {size}: {evidence}"[:REASON_LENGTH]
