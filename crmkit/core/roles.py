"""``crm.roles``: named sets of ``(permission, scope)``, the default roles, and who holds which role.

The default roles are created on first use, and every declared permission's default grants
(``Permission.roles``) are given to them exactly once — so a plugin installed later reaches the
defaults, and a role an administrator changed is never changed back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import sqlalchemy as sa

from crmkit.core import tables as t
from crmkit.core.models import Role
from crmkit.core.permissions import ADMINISTRATOR, DEFAULT_ROLES, SCOPES, Permission
from crmkit.errors import Conflict, NotFound, ValidationError

if TYPE_CHECKING:
    from crmkit.crm import CRM

ADMIN = "users.admin"


class Roles:
    """The role service of one CRM (``crm.roles``); changes need ``users.admin`` and are audited."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        self._defaults_applied = False

    def apply_defaults(self) -> None:
        """Create missing default roles and give them the defaults of permissions never applied before.

        Runs once per CRM object (cheap when nothing is new); called before any principal is made.
        """
        if self._defaults_applied:
            return
        declared = self._crm.access.permissions
        with self._crm.reading() as conn:
            applied = set(conn.execute(sa.select(t.permission_defaults.c.permission)).scalars())
        new = [p for name, p in declared.items() if name not in applied]
        if new:
            try:
                self._apply(new)
            except sa.exc.IntegrityError:  # another process applied them at the same moment: theirs stand
                pass
        self._defaults_applied = True

    def _apply(self, new: list[Permission]) -> None:
        """Give the default roles the defaults of ``new`` permissions, and mark them applied (one transaction)."""
        with self._crm.transaction() as session:
            conn = session.connection()
            now = self._crm.now()
            ids = dict(conn.execute(sa.select(t.roles.c.name, t.roles.c.id)).all())
            done = set(conn.execute(sa.select(t.permission_defaults.c.permission)).scalars())  # another process
            if not done:  # a new database: the default roles are made once (one an administrator deletes stays gone)
                for name, description in DEFAULT_ROLES.items():
                    if name not in ids:
                        ids[name] = conn.execute(
                            t.roles.insert()
                            .values(name=name, description=description, created_at=now)
                            .returning(t.roles.c.id)
                        ).scalar_one()
            rows = []
            for permission in new:
                if permission.name in done:
                    continue
                for role, scope in {**permission.roles, ADMINISTRATOR: "all"}.items():
                    if role in ids:
                        rows.append({"role_id": ids[role], "permission": permission.name, "scope": scope})
            rp = t.role_permissions.c
            have = {(row.role_id, row.permission) for row in conn.execute(sa.select(rp.role_id, rp.permission))}
            rows = [r for r in rows if (r["role_id"], r["permission"]) not in have]
            if rows:
                conn.execute(t.role_permissions.insert(), rows)
            fresh = [{"permission": p.name, "applied_at": now} for p in new if p.name not in done]
            if fresh:
                conn.execute(t.permission_defaults.insert(), fresh)

    # -- reading ----------------------------------------------------------------------------------------

    def list(self) -> list[Role]:
        """Every role with its grants, by name."""
        self.apply_defaults()
        with self._crm.reading() as conn:
            return self._load(conn)

    def get(self, name: str) -> Role:
        """The role with this name (``NotFound`` otherwise)."""
        self.apply_defaults()
        with self._crm.reading() as conn:
            found = self._load(conn, t.roles.c.name == name)
        if not found:
            raise NotFound("role", name)
        return found[0]

    # -- changing ----------------------------------------------------------------------------------------

    def add(self, name: str, description: str = "", grants: Mapping[str, str] | None = None) -> Role:
        """A new role with ``grants`` (``{permission: scope}``); an unknown permission or scope is refused by name."""
        self._crm.access.require(ADMIN)
        self.apply_defaults()
        if not name or not name.strip() or len(name) > 100:
            raise ValidationError("give the role a name of 1–100 characters", field="name")
        checked = {permission: self._check(permission, scope) for permission, scope in (grants or {}).items()}
        with self._crm.transaction() as session:
            conn = session.connection()
            if conn.execute(sa.select(t.roles.c.id).where(t.roles.c.name == name)).first():
                raise Conflict(f"role {name!r} already exists")
            role_id = conn.execute(
                t.roles.insert()
                .values(name=name, description=description, created_at=self._crm.now())
                .returning(t.roles.c.id)
            ).scalar_one()
            if checked:
                conn.execute(
                    t.role_permissions.insert(),
                    [{"role_id": role_id, "permission": p, "scope": s} for p, s in checked.items()],
                )
            self._crm.audit.record(session, "create", "role", name, changes={"grants": checked})
        return self.get(name)

    def grant(self, role: str, permission: str, scope: str = "all") -> Role:
        """Give ``role`` a permission with a scope (replacing the scope it had)."""
        self._crm.access.require(ADMIN)
        self.apply_defaults()
        scope = self._check(permission, scope)
        with self._crm.transaction() as session:
            conn = session.connection()
            role_id = self._id_of(conn, role)
            rp = t.role_permissions.c
            conn.execute(t.role_permissions.delete().where(rp.role_id == role_id, rp.permission == permission))
            conn.execute(t.role_permissions.insert().values(role_id=role_id, permission=permission, scope=scope))
            self._crm.audit.record(session, "grant", "role", role, changes={"permission": permission, "scope": scope})
        return self.get(role)

    def revoke(self, role: str, permission: str) -> Role:
        """Take a permission away from ``role``."""
        self._crm.access.require(ADMIN)
        self.apply_defaults()
        with self._crm.transaction() as session:
            conn = session.connection()
            role_id = self._id_of(conn, role)
            rp = t.role_permissions.c
            gone = conn.execute(t.role_permissions.delete().where(rp.role_id == role_id, rp.permission == permission))
            if not gone.rowcount:
                raise NotFound(f"permission of role {role!r}", permission)
            self._crm.audit.record(session, "revoke", "role", role, changes={"permission": permission})
        return self.get(role)

    def assign(self, username: str, role: str) -> None:
        """Give a user a role (already held: nothing changes)."""
        self._set_holder(username, role, True)

    def unassign(self, username: str, role: str) -> None:
        """Take a role from a user."""
        self._set_holder(username, role, False)

    def delete(self, name: str) -> None:
        """Delete a role nobody holds (one still held is refused with a holder named)."""
        self._crm.access.require(ADMIN)
        with self._crm.transaction() as session:
            conn = session.connection()
            role_id = self._id_of(conn, name)
            ur = t.user_roles.c
            holder = conn.execute(
                sa.select(t.users.c.username)
                .join(t.user_roles, ur.user_id == t.users.c.id)
                .where(ur.role_id == role_id)
                .limit(1)
            ).scalar()
            if holder is not None:
                raise Conflict(f"role {name!r} is held by {holder!r}: unassign it first")
            conn.execute(t.role_permissions.delete().where(t.role_permissions.c.role_id == role_id))
            conn.execute(t.roles.delete().where(t.roles.c.id == role_id))
            self._crm.audit.record(session, "delete", "role", name)

    # -- internals ---------------------------------------------------------------------------------------

    def _set_holder(self, username: str, role: str, hold: bool) -> None:
        self._crm.access.require(ADMIN)
        self.apply_defaults()
        with self._crm.transaction() as session:
            conn = session.connection()
            key = {"user_id": self._crm.users.id_of(conn, username), "role_id": self._id_of(conn, role)}
            ur = t.user_roles.c
            where = sa.and_(ur.user_id == key["user_id"], ur.role_id == key["role_id"])
            there = conn.execute(sa.select(ur.user_id).where(where)).first() is not None
            if hold and not there:
                conn.execute(t.user_roles.insert().values(**key))
            elif not hold and there:
                conn.execute(t.user_roles.delete().where(where))
            else:
                return
            self._crm.audit.record(session, "assign" if hold else "unassign", "role", role, changes={"user": username})

    def _check(self, permission: str, scope: str) -> str:
        declared = self._crm.access.permissions.get(permission)
        if declared is None:
            raise ValidationError(
                f"unknown permission {permission!r} (see `crmkit permissions list`)", field="permission"
            )
        if scope not in SCOPES:
            raise ValidationError(f"unknown scope {scope!r} (one of {', '.join(SCOPES)})", field="scope")
        if not declared.scoped and scope != "all":
            raise ValidationError(f"{permission} is not about records: grant it with scope 'all'", field="scope")
        return scope

    def _id_of(self, conn: sa.Connection, name: str) -> int:
        found = conn.execute(sa.select(t.roles.c.id).where(t.roles.c.name == name)).scalar()
        if found is None:
            raise NotFound("role", name)
        return int(found)

    def _load(self, conn: sa.Connection, where: sa.ColumnElement[bool] | None = None) -> list[Role]:
        query = sa.select(t.roles).order_by(t.roles.c.name)
        if where is not None:
            query = query.where(where)
        roles = conn.execute(query).all()
        rp = t.role_permissions.c
        grants: dict[int, dict[str, str]] = {}
        for role_id, permission, scope in conn.execute(
            sa.select(rp.role_id, rp.permission, rp.scope)
            .where(rp.role_id.in_([r.id for r in roles]))
            .order_by(rp.permission)
        ):
            grants.setdefault(role_id, {})[permission] = scope
        return [Role(r.id, r.name, r.description, grants.get(r.id, {})) for r in roles]
