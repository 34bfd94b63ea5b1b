"""``crmkit sales …``: thin commands over ``crm.sales`` (no SQL, no business rule here).

Amounts are typed in major units of the document's currency (``95000`` đồng, ``19.99`` dollars);
times without a zone are in the business's time zone; dates are ``YYYY-MM-DD`` or ``DD/MM/YYYY``.
"""

from crmkit_sales.commands import (  # noqa: F401 (they add their commands)
    agenda,
    catalog,
    contracts,
    orders,
    pipeline,
    quotes,
    reports,
)
from crmkit_sales.commands.group import sales

__all__ = ["sales"]
