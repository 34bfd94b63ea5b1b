"""The sales plugin's permissions (declared through ``crmkit_permissions``) and the default roles that get them.

Scoped permissions reach the sales records of the customers in the user's scope (``own``: customers
the user owns; ``team``: owned by anyone in the user's teams and sub-teams; ``all``), whoever owns
the deal, quote or task itself. Catalogue permissions are not about customer records.
"""

from __future__ import annotations

from crmkit import Permission

PRODUCTS_READ = "sales.products.read"
PRODUCTS_MANAGE = "sales.products.manage"
DEALS_READ = "sales.deals.read"
DEALS_UPDATE = "sales.deals.update"
QUOTES_READ = "sales.quotes.read"
QUOTES_MANAGE = "sales.quotes.manage"
ORDERS_READ = "sales.orders.read"
ORDERS_PLACE = "sales.orders.place"
ORDERS_REFUND = "sales.orders.refund"
PAYMENTS_RECORD = "sales.payments.record"
CONTRACTS_READ = "sales.contracts.read"
CONTRACTS_MANAGE = "sales.contracts.manage"
AGENDA_READ = "sales.agenda.read"
APPOINTMENTS_MANAGE = "sales.appointments.manage"
TASKS_MANAGE = "sales.tasks.manage"
REPORTS_READ = "sales.reports.read"
LABELS_PRINT = "sales.labels.print"

_EVERYONE = {"manager": "all", "sales": "all", "marketing": "all", "support": "all", "read-only": "all"}
_WORKS_OWN = {"manager": "team", "sales": "own"}
_READS = {**_WORKS_OWN, "support": "all", "read-only": "all"}

PERMISSIONS: list[Permission] = [
    Permission(
        PRODUCTS_READ,
        "see the catalogue, price lists, prices for a customer and the pipelines",
        scoped=False,
        roles=_EVERYONE,
    ),
    Permission(
        PRODUCTS_MANAGE,
        "change the catalogue, price lists, pipelines and the sales settings",
        scoped=False,
        roles={"manager": "all"},
    ),
    Permission(DEALS_READ, "see deals and their stage history", roles={**_WORKS_OWN, "read-only": "all"}),
    Permission(DEALS_UPDATE, "open, change, move, win and lose deals", roles=_WORKS_OWN),
    Permission(QUOTES_READ, "see quotes, their versions and the quote document", roles=_READS),
    Permission(QUOTES_MANAGE, "create, revise, send and decide quotes", roles=_WORKS_OWN),
    Permission(
        ORDERS_READ, "see orders, refunds, payments and what customers owe", roles={**_READS, "marketing": "all"}
    ),
    Permission(ORDERS_PLACE, "place orders (from a quote too), ship, deliver and cancel them", roles=_WORKS_OWN),
    Permission(ORDERS_REFUND, "give money back on an order", roles={"manager": "team"}),
    Permission(PAYMENTS_RECORD, "record payments received on orders", roles=_WORKS_OWN),
    Permission(CONTRACTS_READ, "see contracts and those up for renewal", roles=_READS),
    Permission(CONTRACTS_MANAGE, "record and change contracts", roles=_WORKS_OWN),
    Permission(AGENDA_READ, "see appointments, tasks and agendas (and their iCalendar export)", roles=_READS),
    Permission(
        APPOINTMENTS_MANAGE, "schedule, move, hold and cancel appointments", roles={**_WORKS_OWN, "support": "all"}
    ),
    Permission(TASKS_MANAGE, "create and complete follow-up tasks", roles={**_WORKS_OWN, "support": "all"}),
    Permission(
        REPORTS_READ,
        "funnel, forecast, performance, top products, days to close, revenue — over the customers in scope",
        roles={**_WORKS_OWN, "marketing": "all", "read-only": "all"},
    ),
    Permission(
        LABELS_PRINT,
        "print address labels of the customers one may read (addresses one may not see are left out)",
        scoped=False,
        roles={"manager": "all", "sales": "all"},
    ),
]
