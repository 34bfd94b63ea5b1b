"""``crm.teams``: the company tree (company → branch → team) that ``team`` scopes reach down."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from crmkit.core import tables as t
from crmkit.core.models import Team
from crmkit.errors import Conflict, NotFound, ValidationError

if TYPE_CHECKING:
    from crmkit.crm import CRM

ADMIN = "users.admin"


class Teams:
    """The team service of one CRM (``crm.teams``); changes need ``users.admin`` and are audited."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm

    def add(self, name: str, *, parent: str | None = None) -> Team:
        """A new team, optionally under ``parent`` (a user of a team sees what its sub-teams own)."""
        self._crm.access.require(ADMIN)
        if not name or not name.strip() or len(name) > 100:
            raise ValidationError("give the team a name of 1–100 characters", field="name")
        with self._crm.transaction() as session:
            conn = session.connection()
            if conn.execute(sa.select(t.teams.c.id).where(t.teams.c.name == name)).first():
                raise Conflict(f"team {name!r} already exists")
            parent_id = self.id_of(conn, parent) if parent is not None else None
            team_id = conn.execute(
                t.teams.insert()
                .values(name=name, parent_id=parent_id, created_at=self._crm.now())
                .returning(t.teams.c.id)
            ).scalar_one()
            self._crm.audit.record(session, "create", "team", name, changes={"parent": parent})
            return self._load(conn, team_id)

    def move(self, name: str, parent: str | None) -> Team:
        """Put a team under another (or at the top); a move that would make a cycle is refused, naming it."""
        self._crm.access.require(ADMIN)
        with self._crm.transaction() as session:
            conn = session.connection()
            team_id = self.id_of(conn, name)
            parent_id = self.id_of(conn, parent) if parent is not None else None
            if parent_id is not None and parent_id in self._below(conn, [team_id]):
                raise ValidationError(
                    f"team {parent!r} is {name!r} itself or inside it: that would make a cycle", field="parent"
                )
            conn.execute(t.teams.update().where(t.teams.c.id == team_id).values(parent_id=parent_id))
            self._crm.audit.record(session, "move", "team", name, changes={"parent": parent})
            return self._load(conn, team_id)

    def add_member(self, team: str, username: str) -> None:
        """Put a user in a team (already there: nothing changes)."""
        self._set_member(team, username, True)

    def remove_member(self, team: str, username: str) -> None:
        """Take a user out of a team."""
        self._set_member(team, username, False)

    def _set_member(self, team: str, username: str, member: bool) -> None:
        self._crm.access.require(ADMIN)
        with self._crm.transaction() as session:
            conn = session.connection()
            key = {"team_id": self.id_of(conn, team), "user_id": self._crm.users.id_of(conn, username)}
            tm = t.team_members.c
            where = sa.and_(tm.team_id == key["team_id"], tm.user_id == key["user_id"])
            there = conn.execute(sa.select(tm.team_id).where(where)).first() is not None
            if member and not there:
                conn.execute(t.team_members.insert().values(**key))
            elif not member and there:
                conn.execute(t.team_members.delete().where(where))
            else:
                return
            self._crm.audit.record(session, "join" if member else "leave", "team", team, changes={"user": username})

    def list(self) -> list[Team]:
        """Every team with its parent and members, by name."""
        with self._crm.reading() as conn:
            return self._load_many(conn, list(conn.execute(sa.select(t.teams.c.id).order_by(t.teams.c.name)).scalars()))

    def get(self, name: str) -> Team:
        """The team with this name (``NotFound`` otherwise)."""
        with self._crm.reading() as conn:
            return self._load(conn, self.id_of(conn, name))

    def id_of(self, conn: sa.Connection, name: str) -> int:
        """The id of team ``name`` (``NotFound`` naming it otherwise)."""
        found = conn.execute(sa.select(t.teams.c.id).where(t.teams.c.name == name)).scalar()
        if found is None:
            raise NotFound("team", name)
        return int(found)

    def reach(self, conn: sa.Connection, user_id: int) -> set[int]:
        """Ids of the user's teams and every team below them (what a ``team`` scope covers)."""
        own = list(
            conn.execute(sa.select(t.team_members.c.team_id).where(t.team_members.c.user_id == user_id)).scalars()
        )
        return self._below(conn, own) if own else set()

    def _below(self, conn: sa.Connection, roots: list[int]) -> set[int]:
        """``roots`` and all their descendants (the tree is small: read once, walked in Python)."""
        children: dict[int | None, list[int]] = {}
        for team_id, parent_id in conn.execute(sa.select(t.teams.c.id, t.teams.c.parent_id)):
            children.setdefault(parent_id, []).append(team_id)
        found, todo = set(roots), list(roots)
        while todo:
            for child in children.get(todo.pop(), ()):
                if child not in found:
                    found.add(child)
                    todo.append(child)
        return found

    def _load(self, conn: sa.Connection, team_id: int) -> Team:
        return self._load_many(conn, [team_id])[0]

    def _load_many(self, conn: sa.Connection, ids: list[int]) -> list[Team]:
        if not ids:
            return []
        parent = t.teams.alias("parent")
        tc, tm = t.teams.c, t.team_members.c
        members: dict[int, list[str]] = {}
        for team_id, username in conn.execute(
            sa.select(tm.team_id, t.users.c.username)
            .join(t.users, t.users.c.id == tm.user_id)
            .where(tm.team_id.in_(ids))
            .order_by(t.users.c.username)
        ):
            members.setdefault(team_id, []).append(username)
        rows = {
            r.id: r
            for r in conn.execute(
                sa.select(tc.id, tc.name, parent.c.name.label("parent"))
                .outerjoin(parent, parent.c.id == tc.parent_id)
                .where(tc.id.in_(ids))
            )
        }
        return [Team(r.id, r.name, r.parent, tuple(members.get(r.id, ()))) for r in (rows[i] for i in ids)]
