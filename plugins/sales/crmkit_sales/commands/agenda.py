"""Appointments and tasks: ``crmkit sales appointments|tasks …``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from crmkit.plugin_api import N_, current_translator, emit, emit_object, pass_crm
from crmkit_sales.commands.display import DATE, _day, _moment, _rows, _write
from crmkit_sales.commands.group import sales

# --- appointments and tasks ---------------------------------------------------------------------------------------


@sales.group()
def appointments() -> None:
    """Appointments, agendas and iCalendar export."""


APPOINTMENT_COLUMNS = [
    N_("id"),
    N_("customer_id"),
    N_("employee"),
    N_("subject"),
    N_("starts"),
    N_("ends"),
    N_("channel"),
    N_("place"),
    N_("status"),
    N_("outcome"),
]
TASK_COLUMNS = [N_("id"), N_("customer_id"), N_("employee"), N_("title"), N_("due"), N_("priority"), N_("done")]


def _appointment(crm: Any, a: Any) -> dict[str, Any]:
    zone = crm.sales.appointments.timezone
    return {
        "id": a.id,
        "customer_id": a.customer_id,
        "employee": a.employee,
        "subject": a.subject,
        "starts": a.starts_at.astimezone(zone),
        "ends": a.ends_at.astimezone(zone),
        "channel": a.channel,
        "place": a.place,
        "status": a.status,
        "outcome": a.outcome,
    }


def _task(crm: Any, t: Any) -> dict[str, Any]:
    zone = crm.sales.tasks.timezone
    return {
        "id": t.id,
        "customer_id": t.customer_id,
        "employee": t.employee,
        "title": t.title,
        "due": t.due_at.astimezone(zone),
        "priority": t.priority,
        "done": t.done_at.astimezone(zone) if t.done_at else None,
    }


@appointments.command("add")
@click.argument("customer_id", type=int)
@click.option("--employee", help="A user (yourself by default).")
@click.option("--subject", required=True)
@click.option("--at", "starts", required=True, help="Start, e.g. '2026-03-02 09:00' (business time zone).")
@click.option("--minutes", default=60, show_default=True)
@click.option("--channel", default="in_person", show_default=True)
@click.option("--place")
@click.option("--notes")
@pass_crm
def appointments_add(
    crm: Any,
    customer_id: int,
    employee: str | None,
    subject: str,
    starts: str,
    minutes: int,
    channel: str,
    place: str | None,
    notes: str | None,
) -> None:
    """Schedule an appointment."""
    appointment = crm.sales.appointments.add(
        customer_id=customer_id,
        employee=employee,
        subject=subject,
        starts_at=_moment(crm, starts, "starts_at"),
        duration_minutes=minutes,
        channel=channel,
        place=place,
        notes=notes,
    )
    emit_object(_appointment(crm, appointment))


@appointments.command("list")
@click.option("--customer", type=int)
@click.option("--employee")
@pass_crm
def appointments_list(crm: Any, customer: int | None, employee: str | None) -> None:
    """List appointments in time order."""
    emit(
        _rows(crm.sales.appointments.list(customer_id=customer, employee=employee), lambda a: _appointment(crm, a)),
        APPOINTMENT_COLUMNS,
    )


@appointments.command("agenda")
@click.argument("employee", required=False)
@click.option("--date", "on", type=DATE, help="Day (today by default).")
@click.option("--week", is_flag=True, help="The whole week (Monday–Sunday) of that day.")
@pass_crm
def appointments_agenda(crm: Any, employee: str | None, on: datetime | None, week: bool) -> None:
    """An employee's (yours by default) appointments and open tasks for a day or a week."""
    agenda = crm.sales.appointments.agenda(employee, on=_day(on), span="week" if week else "day")
    t = current_translator()
    emit(
        _rows(agenda.appointments, lambda a: _appointment(crm, a)), APPOINTMENT_COLUMNS, title=t.gettext("Appointments")
    )
    emit(_rows(agenda.tasks, lambda task: _task(crm, task)), TASK_COLUMNS, title=t.gettext("Tasks due"))


@appointments.command("ics")
@click.argument("employee", required=False)
@click.option("--date", "on", type=DATE, help="A day of the week to export (today by default).")
@click.option("--day", "one_day", is_flag=True, help="Only that day, not its week.")
@click.option("-o", "--output", help="File to write (stdout by default).")
@pass_crm
def appointments_ics(crm: Any, employee: str | None, on: datetime | None, one_day: bool, output: str | None) -> None:
    """Export an employee's (your) agenda as iCalendar (.ics)."""
    _write(crm.sales.appointments.ics(employee, on=_day(on), span="day" if one_day else "week"), output)


@appointments.command("done")
@click.argument("appointment_id", type=int)
@click.option("--outcome", required=True)
@pass_crm
def appointments_done(crm: Any, appointment_id: int, outcome: str) -> None:
    """Record that an appointment took place, and its outcome."""
    emit_object(_appointment(crm, crm.sales.appointments.record_outcome(appointment_id, outcome)))


@appointments.command("cancel")
@click.argument("appointment_id", type=int)
@pass_crm
def appointments_cancel(crm: Any, appointment_id: int) -> None:
    """Cancel an appointment."""
    emit_object(_appointment(crm, crm.sales.appointments.cancel(appointment_id)))


@sales.group()
def tasks() -> None:
    """Follow-up tasks."""


@tasks.command("add")
@click.argument("customer_id", type=int)
@click.option("--employee", help="A user (yourself by default).")
@click.option("--title", required=True)
@click.option("--due", required=True, help="Due time, e.g. '2026-03-02 17:00' (business time zone).")
@click.option("--priority", type=click.Choice(["low", "normal", "high"]), default="normal", show_default=True)
@click.option("--notes")
@pass_crm
def tasks_add(
    crm: Any, customer_id: int, employee: str | None, title: str, due: str, priority: str, notes: str | None
) -> None:
    """Create a task."""
    task = crm.sales.tasks.add(
        customer_id=customer_id,
        employee=employee,
        title=title,
        due_at=_moment(crm, due, "due_at"),
        priority=priority,
        notes=notes,
    )
    emit_object(_task(crm, task))


@tasks.command("list")
@click.option("--employee")
@click.option("--customer", type=int)
@click.option("--all", "show_all", is_flag=True, help="Include done tasks.")
@pass_crm
def tasks_list(crm: Any, employee: str | None, customer: int | None, show_all: bool) -> None:
    """List tasks by due time."""
    emit(
        _rows(
            crm.sales.tasks.list(employee=employee, customer_id=customer, open_only=not show_all),
            lambda t: _task(crm, t),
        ),
        TASK_COLUMNS,
    )


@tasks.command("overdue")
@click.option("--employee")
@pass_crm
def tasks_overdue(crm: Any, employee: str | None) -> None:
    """Open tasks past their due time."""
    emit(_rows(crm.sales.tasks.overdue(employee=employee), lambda t: _task(crm, t)), TASK_COLUMNS)


@tasks.command("done")
@click.argument("task_id", type=int)
@click.option("--outcome")
@pass_crm
def tasks_done(crm: Any, task_id: int, outcome: str | None) -> None:
    """Mark a task done."""
    emit_object(_task(crm, crm.sales.tasks.complete(task_id, outcome=outcome)))
