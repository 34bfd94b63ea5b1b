"""The plugin's HTTP routes: a customer's notes — list, add, read, delete — as thin calls into ``crm.notes``.

``crmkit_api_operations`` returns :class:`crmkit.web.Operation` objects, each under ``/notes/``: the
app authenticates the caller, validates query and body with the marshmallow schemas given here,
runs the handler as the caller, and turns ``NotFound``/``PermissionDenied``/``ValidationError`` into
404/403/422. The service checks ``notes.read``/``notes.write`` and the customer's scope.
The web layer is imported inside the hook: loading the plugin for the CLI does not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmkit import hookimpl

if TYPE_CHECKING:
    from crmkit import CRM
    from crmkit.web import ApiRequest, Operation, Reply


@hookimpl
def crmkit_api_operations(crm: CRM) -> list[Operation]:
    """``/notes/customers/{customer_id}`` (list, add) and ``/notes/{note_id}`` (read, delete)."""
    from marshmallow import fields, validate

    from crmkit.web import Operation, Reply, query_schema, schema_of
    from crmkit_notes.service import MAX_LENGTH, READ, WRITE, Note

    def add(r: ApiRequest) -> Reply:
        """Write the note as the caller; 201 with where to read it."""
        note = r.crm.notes.add(r.params["customer_id"], r.body["text"], created_at=r.body.get("created_at"))
        return Reply(note, status=201, headers={"Location": f"/notes/{note.id}"})

    def delete(r: ApiRequest) -> Reply:
        """Delete the note; nothing to answer but 204."""
        r.crm.notes.delete(r.params["note_id"])
        return Reply(status=204)

    note = schema_of(Note)
    customer, one = "/notes/customers/{customer_id:int}", "/notes/{note_id:int}"
    return [
        Operation(
            "GET",
            customer,
            lambda r: r.crm.notes.list(r.params["customer_id"], limit=r.query["limit"]),
            "A customer's notes, newest first",
            response=note,
            many=True,
            permission=READ,
            query=query_schema(
                "NoteListQuery", limit=fields.Integer(load_default=50, validate=validate.Range(1, 1000))
            ),
        ),
        Operation(
            "POST",
            customer,
            add,
            "Write a note about a customer",
            response=note,
            status=201,
            permission=WRITE,
            body=query_schema(
                "NoteBody",
                text=fields.String(required=True, validate=validate.Length(1, MAX_LENGTH)),
                created_at=fields.AwareDateTime(allow_none=True),
            ),
        ),
        Operation(
            "GET", one, lambda r: r.crm.notes.get(r.params["note_id"]), "Read a note", response=note, permission=READ
        ),
        Operation("DELETE", one, delete, "Delete a note", status=204, permission=WRITE),
    ]
