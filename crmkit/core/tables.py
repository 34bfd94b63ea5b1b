"""The core's tables (SQLAlchemy Core). Plugins reference ``customers.id`` and never alter these."""

from __future__ import annotations

import sqlalchemy as sa

from crmkit.core.types import Id, JSONType, SearchKey, UTCDateTime, customer_fk, new_metadata

metadata = new_metadata()

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("external_id", sa.String(200), unique=True),
    sa.Column("kind", sa.String(20), nullable=False),  # person | organization
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("given_name", sa.String(150)),
    sa.Column("family_name", sa.String(150)),
    sa.Column("name_key", SearchKey, nullable=False),  # folded name, for sorting
    sa.Column("birth_date", sa.Date),
    sa.Column("gender", sa.String(20)),
    sa.Column("lifecycle_stage", sa.String(30), nullable=False),
    sa.Column("owner", sa.String(100)),
    sa.Column("country", sa.String(2)),
    sa.Column("city", sa.String(100)),
    sa.Column("province", sa.String(100)),
    sa.Column("attributes", JSONType, nullable=False),
    sa.Column("status", sa.String(20), nullable=False, server_default="active"),  # active | merged | erased
    sa.Column("merged_into_id", Id, sa.ForeignKey("customers.id")),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_customers_name_key_id", "name_key", "id"),
    sa.Index("ix_customers_owner_id", "owner", "id"),
    # Tombstones only: re-pointing merge chains and listing the records merged into a customer
    # look customers up by ``merged_into_id``; without this each merge scanned the whole table.
    sa.Index(
        "ix_customers_merged_into_id",
        "merged_into_id",
        sqlite_where=sa.text("merged_into_id IS NOT NULL"),
        postgresql_where=sa.text("merged_into_id IS NOT NULL"),
    ),
)

contact_points = sa.Table(
    "customer_contact_points",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    customer_fk(),
    sa.Column("kind", sa.String(20), nullable=False),  # email | phone
    sa.Column("value", sa.String(320), nullable=False),  # normalized: lower-case e-mail, E.164 phone
    sa.Column("label", sa.String(50)),
    sa.Column("position", sa.Integer, nullable=False),  # 0 = primary
    sa.Index("ix_customer_contact_points_kind_value", "kind", "value"),
)

addresses = sa.Table(
    "customer_addresses",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    customer_fk(),
    sa.Column("label", sa.String(50)),
    sa.Column("line1", sa.String(300), nullable=False),
    sa.Column("line2", sa.String(300)),
    sa.Column("ward", sa.String(100)),
    sa.Column("district", sa.String(100)),
    sa.Column("city", sa.String(100)),
    sa.Column("province", sa.String(100)),
    sa.Column("postal_code", sa.String(20)),
    sa.Column("country", sa.String(2)),
    sa.Column("position", sa.Integer, nullable=False),
)

tags = sa.Table(
    "customer_tags",
    metadata,
    customer_fk(index=False, primary_key=True),
    sa.Column("tag", sa.String(100), primary_key=True),
    sa.Index("ix_customer_tags_tag_customer_id", "tag", "customer_id"),
)

consents = sa.Table(
    "customer_consents",
    metadata,
    customer_fk(index=False, primary_key=True),
    sa.Column("channel", sa.String(30), primary_key=True),
    sa.Column("granted", sa.Boolean, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("source", sa.String(200), nullable=False),
)

memberships = sa.Table(
    "customer_memberships",
    metadata,
    sa.Column("person_id", Id, sa.ForeignKey("customers.id"), primary_key=True),
    sa.Column("organization_id", Id, sa.ForeignKey("customers.id"), primary_key=True, index=True),
    sa.Column("role", sa.String(100)),
)

search_keys = sa.Table(
    "customer_search_keys",
    metadata,
    sa.Column("key", SearchKey, primary_key=True),
    customer_fk(index=True, primary_key=True),
    # The customer's owner, copied from ``customers.owner`` on every write that changes either: a
    # scoped search is then one range scan per owner over (owner, key), not a scan of every key in
    # the range joined to customers to drop the rows outside the scope.
    sa.Column("owner", sa.String(100)),
    # Owned customers' keys only: a scoped search names owners, so unowned keys are never read through it.
    sa.Index(
        "ix_customer_search_keys_owner_key_customer_id",
        "owner",
        "key",
        "customer_id",
        sqlite_where=sa.text("owner IS NOT NULL"),
        postgresql_where=sa.text("owner IS NOT NULL"),
    ),
    # On SQLite the rows live in their primary key's B-tree (key, customer_id): each key is written once,
    # not to a rowid table and again to the key's index (the bulk import writes millions of them).
    sqlite_with_rowid=False,
)

interactions = sa.Table(
    "interactions",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    customer_fk(index=False),
    sa.Column("channel", sa.String(30), nullable=False),
    sa.Column("direction", sa.String(10), nullable=False),  # inbound | outbound
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("subject", sa.String(300)),
    sa.Column("summary", sa.Text),
    sa.Column("outcome", sa.String(100)),
    sa.Column("rating", sa.SmallInteger),
    sa.Column("employee", sa.String(100)),
    sa.Column("sender", sa.String(320)),  # the address/number it came from, as seen on the channel
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("external_id", sa.String(200), unique=True),  # the source system's id: a re-import updates it
    sa.CheckConstraint("rating IS NULL OR (rating BETWEEN 1 AND 5)", name="rating_range"),
    sa.Index("ix_interactions_customer_id_occurred_at", "customer_id", "occurred_at", "id"),
    sa.Index("ix_interactions_employee_occurred_at", "employee", "occurred_at"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("action", sa.String(50), nullable=False),
    sa.Column("entity", sa.String(50), nullable=False),
    sa.Column("entity_id", sa.String(100), nullable=False),
    sa.Column("customer_id", Id, index=True),  # no FK: the trail outlives merges
    sa.Column("changes", JSONType),
    sa.Column("user_id", Id, index=True),  # the acting user (users are never deleted); NULL: the system
)

merges = sa.Table(
    "customer_merges",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("kept_id", Id, sa.ForeignKey("customers.id"), nullable=False, index=True),
    sa.Column("merged_id", Id, sa.ForeignKey("customers.id"), nullable=False, index=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("snapshot", JSONType, nullable=False),  # the merged customer as it was
    sa.Column("filled", JSONType),  # what the merge changed on the kept customer (fields, consents, memberships)
    sa.Column("undone_at", UTCDateTime),  # set by an unmerge
    sa.Column("undone_by", sa.String(100)),
)

#: The merge journal: every row a merge moved from the merged customer to the kept one (``row_key``: the row's
#: primary key besides the moved column, as text), written in the merge's transaction, read back by an unmerge.
merge_rows = sa.Table(
    "customer_merge_rows",
    metadata,
    sa.Column("merge_id", Id, sa.ForeignKey("customer_merges.id"), primary_key=True),
    sa.Column("table_name", sa.String(100), primary_key=True),
    sa.Column("column_name", sa.String(100), primary_key=True),
    sa.Column("row_key", sa.String(200), primary_key=True),
)

plugin_states = sa.Table(
    "crmkit_plugins",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("changed_at", UTCDateTime, nullable=False),
)

settings = sa.Table(
    "crmkit_settings",
    metadata,
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("value", JSONType, nullable=False),
)


# --- identity: the business's employees, their teams and roles, and integrations' tokens -------------------

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    # the key records refer to (customers.owner, deals' owners): chosen once, never renamed
    sa.Column("username", sa.String(100), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(320)),
    sa.Column("phone", sa.String(32)),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("locale", sa.String(10)),
    sa.Column("timezone", sa.String(64)),
    sa.Column("password_hash", sa.String(200)),  # argon2id; NULL: cannot sign in with a password
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", UTCDateTime),
    sa.Column("last_login_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

teams = sa.Table(
    "teams",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("parent_id", Id, sa.ForeignKey("teams.id"), index=True),  # company → branch → team
    sa.Column("created_at", UTCDateTime, nullable=False),
)

team_members = sa.Table(
    "team_members",
    metadata,
    sa.Column("team_id", Id, sa.ForeignKey("teams.id"), primary_key=True),
    sa.Column("user_id", Id, sa.ForeignKey("users.id"), primary_key=True, index=True),
)

roles = sa.Table(
    "roles",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("description", sa.String(300), nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

role_permissions = sa.Table(
    "role_permissions",
    metadata,
    sa.Column("role_id", Id, sa.ForeignKey("roles.id"), primary_key=True),
    sa.Column("permission", sa.String(100), primary_key=True),
    sa.Column("scope", sa.String(10), nullable=False),  # own | team | all
    sa.CheckConstraint("scope IN ('own', 'team', 'all')", name="scope_known"),
)

user_roles = sa.Table(
    "user_roles",
    metadata,
    sa.Column("user_id", Id, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("role_id", Id, sa.ForeignKey("roles.id"), primary_key=True, index=True),
)

#: Declared permissions whose default grants have been given to the default roles once (so a role an
#: administrator changed is never changed back, and a plugin installed later still reaches the defaults).
permission_defaults = sa.Table(
    "permission_defaults",
    metadata,
    sa.Column("permission", sa.String(100), primary_key=True),
    sa.Column("applied_at", UTCDateTime, nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("user_id", Id, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("lookup", sa.String(32), nullable=False, unique=True),  # the public part of the token
    sa.Column("secret_hash", sa.String(64), nullable=False),  # SHA-256 of the secret part (256 random bits)
    sa.Column("permissions", JSONType),  # NULL: all of the user's; else a subset of names
    sa.Column("expires_at", UTCDateTime),
    sa.Column("last_used_at", UTCDateTime),
    sa.Column("revoked_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
)


# --- webhooks and the worker: an outbox written in the business transaction, claimed with leases -----------------

webhook_subscriptions = sa.Table(
    "webhook_subscriptions",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("events", JSONType, nullable=False),  # event type names
    sa.Column(
        "secret", sa.String(200), nullable=False
    ),  # wrapped:… (the whsec_ key wrapped); older rows whsec_… in clear
    sa.Column("description", sa.String(300), nullable=False, server_default=""),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

webhook_events = sa.Table(
    "webhook_events",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),  # evt_…: the webhook-id receivers dedupe on
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("occurred_at", UTCDateTime, nullable=False, index=True),
    sa.Column("customer_id", Id, index=True),  # no FK: the event outlives merges; erasure redacts by it
    sa.Column("data", JSONType, nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(40), sa.ForeignKey("webhook_events.id"), nullable=False),
    sa.Column(
        "subscription_id", Id, sa.ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    sa.Column("status", sa.String(20), nullable=False),  # pending | delivered | dead
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    # when a worker may (next) take it: a claim moves it to the lease's end, so an expired lease is due again
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("claimed_by", sa.String(100)),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("last_status", sa.Integer),
    sa.Column("last_error", sa.String(500)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime),
    sa.Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),  # the claim query
)

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column(
        "delivery_id", Id, sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("worker", sa.String(100), nullable=False),
    sa.Column("status_code", sa.Integer),  # NULL: no HTTP answer (refused, timed out)
    sa.Column("error", sa.String(500)),
    sa.Column("duration_ms", sa.Integer, nullable=False),
)

jobs = sa.Table(
    "crmkit_jobs",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("next_run_at", UTCDateTime, nullable=False),
    sa.Column("claimed_by", sa.String(100)),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("last_started_at", UTCDateTime),
    sa.Column("last_finished_at", UTCDateTime),
    sa.Column("last_error", sa.String(500)),
)


# --- the HTTP API: a replayed POST answers what the first one did ----------------------------------------

idempotency_keys = sa.Table(
    "api_idempotency_keys",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("user_id", Id, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),  # SHA-256 of method, path, query and body
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("headers", JSONType, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.UniqueConstraint("user_id", "key", name="uq_api_idempotency_keys_user_id_key"),
)


# --- the web console: signed-in browsers ------------------------------------------------------------------

console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # SHA-256 of the cookie's token: a leaked table signs no one in
    sa.Column("user_id", Id, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False, index=True),  # the absolute end; idle ends it sooner
    sa.Column("csrf_secret", sa.String(64), nullable=False),
)
