"""Customer import and export: CSV or JSON Lines in, the same columns out; and the import of past interactions.

An import is streamed (memory does not grow with the file), validated by the customer
schema, keyed by ``external_id`` (a re-run updates, never duplicates), and written in
batches of one transaction each: interrupting it leaves whole batches, and running it
again finishes the job. Rejected rows go to a reject file with their reasons.

Validation: ``CustomerSchema`` is the contract, but ``Schema.load`` costs ~60 µs a row.
:class:`RowValidator` runs the schema's own field conversions, validators and hooks
without the ``Schema.load`` machinery; any row it cannot vouch for goes through
``crm.customers.validate`` itself, so both accept and reject exactly the same rows
(``tests/test_import_export.py`` proves it on generated rows). Large files are read and
validated in other processes (``jobs``) while this one writes; on PostgreSQL the rows are
written with ``COPY``. A phone that is possible but not a valid number is dropped by default
(``invalid_phone``), the row imported and listed in the reject file.

Owners and permissions, as ``crm.customers.add`` / ``update`` apply them: a row's ``owner``
must be an active user (checked against the set of active usernames read once per import)
within the acting user's scope of ``customers.create`` (new customers) or ``customers.update``
(a changed owner); a user's new customer without an owner is theirs. Importing needs
``customers.create``; a row that would change a customer outside the user's
``customers.update`` scope is rejected with ``external_id: 'X' is used by a customer you
cannot change`` — it names neither the customer nor its owner, and says no more than adding a
customer with that external id would (external ids are unique). Exporting needs
``customers.export``: only customers in its scope are written, with their phones, e-mails and
street lines masked where the user may not see contact details (``customers.contact_details``).
The plain ``crm`` (the system) imports and exports everything; ``crm.as_user(...)`` (the
handle, or a ``with`` block around the call) imports and exports as that user.

:func:`import_interactions` loads past calls, visits and e-mails with the same machinery (the
reader, the reject file, batches of one transaction each), keyed by the interactions' own
``external_id``; it needs ``interactions.log`` and the customer's scope of it.

The package's seams: :mod:`.columns` (the file's columns), :mod:`.reading` (records from a file),
:mod:`.validation` (the fast schema check), :mod:`.pipeline` (batches, one transaction each),
:mod:`.writing` (the bulk writer), :mod:`.rejects` (the reject file), :mod:`.export`.
"""

from crmkit.core.transfer.columns import (
    ATTRIBUTE_PREFIX,
    COLUMNS,
    CONSENT_PREFIX,
    REJECT_COLUMNS,
    reason_text,
    schema_input,
)
from crmkit.core.transfer.customer_import import import_customers
from crmkit.core.transfer.export import export_customers, write_customers
from crmkit.core.transfer.interactions import INTERACTION_COLUMNS, import_interactions, resolve_customers
from crmkit.core.transfer.pipeline import AcceptedRow, ImportOutcome, ImportSummary, RejectedRow, import_records
from crmkit.core.transfer.reading import RecordReader
from crmkit.core.transfer.validation import RowValidator

__all__ = [
    "ATTRIBUTE_PREFIX",
    "COLUMNS",
    "CONSENT_PREFIX",
    "INTERACTION_COLUMNS",
    "REJECT_COLUMNS",
    "AcceptedRow",
    "ImportOutcome",
    "ImportSummary",
    "RecordReader",
    "RejectedRow",
    "RowValidator",
    "export_customers",
    "import_customers",
    "import_interactions",
    "import_records",
    "reason_text",
    "resolve_customers",
    "schema_input",
    "write_customers",
]
