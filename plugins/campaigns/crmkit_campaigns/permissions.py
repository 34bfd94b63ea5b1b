"""What the campaigns plugin lets roles do, declared through ``crmkit_permissions``.

Scopes of the permissions about customers (``own`` / ``team`` / ``all``) limit which customers a
count, sample, export, message list, preview, report or run reaches. ``campaigns.manage`` and
``campaigns.segments.manage`` are scoped by the campaign's owner and the segment's author instead
(a team manager changes the team's campaigns). Channel settings are all or nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmkit import Permission

if TYPE_CHECKING:
    pass

READ = "campaigns.read"
MANAGE = "campaigns.manage"
SEND = "campaigns.send"
REPORTS = "campaigns.reports.read"
SEGMENTS_READ = "campaigns.segments.read"
SEGMENTS_MANAGE = "campaigns.segments.manage"
SEGMENTS_EXPORT = "campaigns.segments.export"
CHANNELS = "campaigns.channels.manage"
SUPPRESSIONS = "campaigns.suppressions.manage"

_READERS = {"marketing": "all", "manager": "team", "read-only": "all"}
_DOERS = {"marketing": "all", "manager": "team"}

PERMISSIONS = [
    Permission(
        READ,
        "see campaigns, their messages (of the customers in scope), previews and the suppression list",
        roles=_READERS,
    ),
    Permission(
        MANAGE,
        "create, change, schedule and cancel campaigns and their message variants (templates); "
        "the scope is over the campaign's owner",
        roles=_DOERS,
    ),
    Permission(
        SEND, "run campaigns (prepare their messages for the customers in scope), schedule them, dispatch", roles=_DOERS
    ),
    Permission(REPORTS, "campaign reports and comparisons, counted over the customers in scope", roles=_READERS),
    Permission(SEGMENTS_READ, "see saved segments; count and sample their customers in scope", roles=_READERS),
    Permission(
        SEGMENTS_MANAGE,
        "create, change and delete saved segments; the scope is over the segment's author",
        roles=_DOERS,
    ),
    Permission(
        SEGMENTS_EXPORT,
        "export a segment's customers in scope (contact details masked without customers.contact_details)",
        roles=_DOERS,
    ),
    Permission(
        CHANNELS,
        "set up channels and their adapters, campaign settings, the webhook token",
        scoped=False,
        roles={"marketing": "all"},
    ),
    Permission(
        SUPPRESSIONS,
        "put customers and addresses on the suppression list and take them off",
        roles={"marketing": "all", "manager": "team", "support": "all"},
    ),
]
