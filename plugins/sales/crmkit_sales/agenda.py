"""Appointments (``crm.sales.appointments``) and follow-up tasks (``crm.sales.tasks``) for employees.

Days and weeks are those of the business's time zone (setting ``timezone``, Asia/Ho_Chi_Minh by
default); times are stored in UTC. An employee's agenda exports to iCalendar (.ics).

The employee is a user (the acting user by default). A user sees the appointments and tasks of the
customers in their ``sales.agenda.read`` scope — in anyone's agenda — and changes those in their
``sales.appointments.manage`` / ``sales.tasks.manage`` scope.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa

from crmkit.errors import ValidationError
from crmkit.plugin_api import core_tables as core
from crmkit_sales import ical
from crmkit_sales import models as m
from crmkit_sales.base import Part, check_period, one
from crmkit_sales.objects import Agenda, Appointment, Task, from_row
from crmkit_sales.permissions import AGENDA_READ, APPOINTMENTS_MANAGE, DEALS_READ, TASKS_MANAGE
from crmkit_sales.schemas import AppointmentSchema, TaskSchema, load

SPANS = {"day": 1, "week": 7}
_ICS_PRIORITY = {"high": "1", "normal": "5", "low": "9"}


class Appointments(Part):
    """Meetings and calls with customers: time, place or channel, and the outcome once held."""

    _schema = AppointmentSchema()

    def add(self, data: Mapping[str, Any] | None = None, /, **fields: Any) -> Appointment:
        """Schedule: ``customer_id``, ``employee``, ``subject``, ``starts_at`` and ``ends_at`` (or
        ``duration_minutes``, 60), ``channel`` (in_person, phone, video, chat, email), ``place``.
        Needs ``sales.appointments.manage`` on the customer."""
        self.require(APPOINTMENTS_MANAGE)
        values = load(self._schema, {**(data or {}), **fields})
        values["employee"] = self.employee(values.get("employee"))
        duration = values.pop("duration_minutes")
        values["ends_at"] = values.get("ends_at") or values["starts_at"] + timedelta(minutes=duration)
        now = self.crm.now()
        with self.crm.transaction() as session:
            conn = session.connection()
            values["customer_id"] = self.require_customer(conn, values["customer_id"], APPOINTMENTS_MANAGE)
            self.crm.access.check_owner(conn, values["employee"], APPOINTMENTS_MANAGE, field="employee")
            if values.get("deal_id") is not None:
                self.load(conn, m.deals, values["deal_id"], "deal", read=DEALS_READ)
            new_id = conn.execute(
                m.appointments.insert()
                .values(**values, status="scheduled", created_at=now, updated_at=now)
                .returning(m.appointments.c.id)
            ).scalar_one()
            self.audit(session, "create", "appointment", new_id, customer_id=values["customer_id"], changes=values)
            return self._get(conn, new_id)

    def reschedule(self, appointment_id: int, starts_at: datetime, ends_at: datetime | None = None) -> Appointment:
        """Move an appointment (same length unless ``ends_at`` is given)."""
        self.require(APPOINTMENTS_MANAGE)
        with self.crm.transaction() as session:
            conn = session.connection()
            current = self._checked(conn, appointment_id, write=APPOINTMENTS_MANAGE)
            values = load(
                self._schema,
                {
                    "customer_id": current.customer_id,
                    "employee": current.employee,
                    "subject": current.subject,
                    "starts_at": starts_at,
                    "ends_at": ends_at or starts_at + (current.ends_at - current.starts_at),
                },
            )
            change = {"starts_at": values["starts_at"], "ends_at": values["ends_at"], "status": "scheduled"}
            conn.execute(
                m.appointments.update()
                .where(m.appointments.c.id == appointment_id)
                .values(**change, updated_at=self.crm.now())
            )
            self.audit(
                session, "reschedule", "appointment", appointment_id, customer_id=current.customer_id, changes=change
            )
            return self._get(conn, appointment_id)

    def record_outcome(self, appointment_id: int, outcome: str) -> Appointment:
        """Mark an appointment held, with what came out of it."""
        if not outcome.strip():
            raise ValidationError("say what came out of it", field="outcome")
        return self._set(appointment_id, status="done", outcome=outcome.strip())

    def cancel(self, appointment_id: int) -> Appointment:
        """Cancel an appointment (it stays in the history)."""
        return self._set(appointment_id, status="cancelled")

    def get(self, appointment_id: int) -> Appointment:
        """One appointment (``NotFound`` when its customer is outside the ``sales.agenda.read`` scope)."""
        with self.crm.reading() as conn:
            return self._checked(conn, appointment_id)

    def list(
        self,
        *,
        customer_id: int | None = None,
        employee: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 200,
    ) -> list[Appointment]:
        """Appointments in time order, filtered by customer, employee and start time [since, until): those of the
        customers in the ``sales.agenda.read`` scope."""
        check_period(since, until)
        a = m.appointments.c
        query = self.scoped(
            sa.select(m.appointments).order_by(a.starts_at, a.id).limit(limit), a.customer_id, AGENDA_READ
        )
        for column, value in ((a.customer_id, customer_id), (a.employee, employee)):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(a.starts_at >= since)
        if until is not None:
            query = query.where(a.starts_at < until)
        with self.crm.reading() as conn:
            return [from_row(Appointment, r) for r in conn.execute(query).mappings()]

    def agenda(self, employee: str | None = None, *, on: date | None = None, span: str = "day") -> Agenda:
        """The employee's (the acting user's by default) scheduled appointments and open tasks for a day, or the
        week (Monday–Sunday) of ``on``: those with customers in the ``sales.agenda.read`` scope."""
        self.require(AGENDA_READ)
        employee = self.employee(employee)
        if span not in SPANS:
            raise ValidationError(f"must be one of {', '.join(SPANS)}", field="span")
        day = on or self.crm.today()
        if span == "week":
            day -= timedelta(days=day.weekday())
        start = datetime.combine(day, time(0), self.timezone)
        end = datetime.combine(day + timedelta(days=SPANS[span]), time(0), self.timezone)
        a, t = m.appointments.c, m.tasks.c
        appointments_q = self.scoped(
            sa.select(m.appointments)
            .where(a.employee == employee, a.status != "cancelled", a.starts_at >= start, a.starts_at < end)
            .order_by(a.starts_at, a.id),
            a.customer_id,
            AGENDA_READ,
        )
        tasks_q = self.scoped(
            sa.select(m.tasks)
            .where(t.employee == employee, t.done_at.is_(None), t.due_at >= start, t.due_at < end)
            .order_by(t.due_at, t.id),
            t.customer_id,
            AGENDA_READ,
        )
        with self.crm.reading() as conn:
            appointments = conn.execute(appointments_q).mappings().all()
            tasks = conn.execute(tasks_q).mappings().all()
        return Agenda(
            employee, start, end, [from_row(Appointment, r) for r in appointments], [from_row(Task, r) for r in tasks]
        )

    def ics(self, employee: str | None = None, *, on: date | None = None, span: str = "week") -> str:
        """The employee's agenda as an iCalendar file (appointments as VEVENTs, open tasks as VTODOs)."""
        agenda = self.agenda(employee, on=on, span=span)
        customers = _names(self.crm, {x.customer_id for x in [*agenda.appointments, *agenda.tasks]})
        domain = str(self.crm.settings.get("domain") or "crmkit.local")
        stamp = ical.utc(self.crm.now())
        events = [
            ical.component(
                "VEVENT",
                [
                    ("UID", f"sales-appointment-{a.id}@{domain}"),
                    ("DTSTAMP", stamp),
                    ("DTSTART", ical.utc(a.starts_at)),
                    ("DTEND", ical.utc(a.ends_at)),
                    ("SUMMARY", ical.escape(f"{a.subject} — {customers.get(a.customer_id, a.customer_id)}")),
                    ("LOCATION", ical.escape(a.place) if a.place else None),
                    ("DESCRIPTION", ical.escape("\n".join(filter(None, [f"Kênh / channel: {a.channel}", a.notes])))),
                    ("STATUS", "CONFIRMED"),
                    ("LAST-MODIFIED", ical.utc(a.updated_at)),
                ],
            )
            for a in agenda.appointments
        ]
        todos = [
            ical.component(
                "VTODO",
                [
                    ("UID", f"sales-task-{t.id}@{domain}"),
                    ("DTSTAMP", stamp),
                    ("DUE", ical.utc(t.due_at)),
                    ("SUMMARY", ical.escape(f"{t.title} — {customers.get(t.customer_id, t.customer_id)}")),
                    ("DESCRIPTION", ical.escape(t.notes) if t.notes else None),
                    ("PRIORITY", _ICS_PRIORITY[t.priority]),
                    ("STATUS", "NEEDS-ACTION"),
                    ("LAST-MODIFIED", ical.utc(t.updated_at)),
                ],
            )
            for t in agenda.tasks
        ]
        return ical.calendar(f"{agenda.employee} — crmkit", [*events, *todos])

    def _set(self, appointment_id: int, **values: Any) -> Appointment:
        self.require(APPOINTMENTS_MANAGE)
        with self.crm.transaction() as session:
            conn = session.connection()
            current = self._checked(conn, appointment_id, write=APPOINTMENTS_MANAGE)
            conn.execute(
                m.appointments.update()
                .where(m.appointments.c.id == appointment_id)
                .values(**values, updated_at=self.crm.now())
            )
            self.audit(
                session, "update", "appointment", appointment_id, customer_id=current.customer_id, changes=values
            )
            return self._get(conn, appointment_id)

    def _get(self, conn: sa.Connection, appointment_id: int) -> Appointment:
        return from_row(Appointment, one(conn, m.appointments, appointment_id, "appointment"))

    def _checked(self, conn: sa.Connection, appointment_id: int, *, write: str | None = None) -> Appointment:
        return from_row(
            Appointment, self.load(conn, m.appointments, appointment_id, "appointment", read=AGENDA_READ, write=write)
        )


class Tasks(Part):
    """Follow-up tasks an employee owes a customer; open ones past their due time are overdue."""

    _schema = TaskSchema()

    def add(self, data: Mapping[str, Any] | None = None, /, **fields: Any) -> Task:
        """Create a task: ``customer_id``, ``employee`` (a user; the acting user by default), ``title``, ``due_at``,
        ``priority`` (low, normal, high). Needs ``sales.tasks.manage`` on the customer."""
        self.require(TASKS_MANAGE)
        values = load(self._schema, {**(data or {}), **fields})
        values["employee"] = self.employee(values.get("employee"))
        now = self.crm.now()
        with self.crm.transaction() as session:
            conn = session.connection()
            values["customer_id"] = self.require_customer(conn, values["customer_id"], TASKS_MANAGE)
            self.crm.access.check_owner(conn, values["employee"], TASKS_MANAGE, field="employee")
            if values.get("deal_id") is not None:
                self.load(conn, m.deals, values["deal_id"], "deal", read=DEALS_READ)
            new_id = conn.execute(
                m.tasks.insert().values(**values, created_at=now, updated_at=now).returning(m.tasks.c.id)
            ).scalar_one()
            self.audit(session, "create", "task", new_id, customer_id=values["customer_id"], changes=values)
            return self._get(conn, new_id)

    def complete(self, task_id: int, *, outcome: str | None = None, at: datetime | None = None) -> Task:
        """Mark a task done (with what came of it)."""
        self.require(TASKS_MANAGE)
        when = at or self.crm.now()
        with self.crm.transaction() as session:
            conn = session.connection()
            current = from_row(Task, self.load(conn, m.tasks, task_id, "task", read=AGENDA_READ, write=TASKS_MANAGE))
            if current.done_at is not None:
                raise ValidationError(f"task {task_id} was done on {current.done_at.isoformat()}", field="done_at")
            conn.execute(
                m.tasks.update()
                .where(m.tasks.c.id == task_id)
                .values(done_at=when, outcome=outcome, updated_at=self.crm.now())
            )
            self.audit(
                session, "complete", "task", task_id, customer_id=current.customer_id, changes={"outcome": outcome}
            )
            return self._get(conn, task_id)

    def get(self, task_id: int) -> Task:
        """One task (``NotFound`` when its customer is outside the ``sales.agenda.read`` scope)."""
        with self.crm.reading() as conn:
            return from_row(Task, self.load(conn, m.tasks, task_id, "task", read=AGENDA_READ))

    def list(
        self, *, employee: str | None = None, customer_id: int | None = None, open_only: bool = True, limit: int = 200
    ) -> list[Task]:
        """Tasks by due time, filtered by employee and customer; done ones only when ``open_only`` is False: those
        of the customers in the ``sales.agenda.read`` scope."""
        t = m.tasks.c
        query = self.scoped(sa.select(m.tasks).order_by(t.due_at, t.id).limit(limit), t.customer_id, AGENDA_READ)
        for column, value in ((t.employee, employee), (t.customer_id, customer_id)):
            if value is not None:
                query = query.where(column == value)
        if open_only:
            query = query.where(t.done_at.is_(None))
        with self.crm.reading() as conn:
            return [from_row(Task, r) for r in conn.execute(query).mappings()]

    def overdue(self, *, employee: str | None = None, now: datetime | None = None, limit: int = 500) -> list[Task]:
        """Open tasks past their due time, most overdue first (of the customers in the ``sales.agenda.read`` scope)."""
        t = m.tasks.c
        query = (
            sa.select(m.tasks).where(t.done_at.is_(None), t.due_at < (now or self.crm.now())).order_by(t.due_at, t.id)
        )
        query = self.scoped(query, t.customer_id, AGENDA_READ)
        if employee is not None:
            query = query.where(t.employee == employee)
        with self.crm.reading() as conn:
            return [from_row(Task, r) for r in conn.execute(query.limit(limit)).mappings()]

    def _get(self, conn: sa.Connection, task_id: int) -> Task:
        return from_row(Task, one(conn, m.tasks, task_id, "task"))


def _names(crm: Any, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    with crm.reading() as conn:
        rows = conn.execute(
            sa.select(core.customers.c.id, core.customers.c.name).where(core.customers.c.id.in_(sorted(ids)))
        ).all()
    return dict(rows)
