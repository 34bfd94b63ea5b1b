"""idic_0003 carries the merges IDIC logged before the core kept a merge journal into that journal, so they can
still be undone after the upgrade; a merge with no journal at all is refused by name."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crmkit import Conflict
from crmkit.cli.context import CLIContext
from crmkit.cli.main import cli
from crmkit.core import tables as t
from crmkit.core.types import JSONType

pytestmark = pytest.mark.crmkit_plugins("idic")


def crmkit(crm: Any, *args: str) -> None:
    url = crm.engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(cli, ["--db", url, *args], obj=CLIContext(plugins=["idic"]))
    assert result.exit_code == 0, result.output


def test_a_merge_logged_before_the_journal_is_carried_into_it_and_can_be_undone(crm: Any) -> None:
    an = crm.customers.add(name="Nguyễn Văn An", email="an@example.vn", tags=["vip"])
    again = crm.customers.add(name="Nguyen Van An", email="an@example.vn", phone="0903111222", tags=["zalo"])
    logged = crm.interactions.log(again.id, "phone", subject="Hỏi giá")
    crm.idic.run(steps=["identify"])
    (entry,) = crm.idic.merges()
    (core_merge,) = crm.customers.merges()
    crmkit(crm, "db", "downgrade", "--yes", "idic", "idic_0002")
    with crm.engine.begin() as conn:  # as an older crmkit left it: IDIC's own record, no core journal
        conn.execute(t.merge_rows.delete())
        conn.execute(t.merges.update().values(filled=sa.null()))
        moved = {
            "interactions": [logged.id],
            "contact_points": [["phone", "+84903111222"]],
            "addresses": [],
            "tags": ["zalo"],
            "filled": [],
            "attributes_added": [],
        }
        log = sa.table("idic_merges", sa.column("moved", JSONType))
        conn.execute(log.update().values(moved=moved))
    with pytest.raises(Conflict, match="before crmkit kept a merge journal"):
        crm.customers.unmerge(core_merge.id)
    crmkit(crm, "db", "upgrade")
    crm.idic.unmerge(entry["id"])
    restored = crm.customers.get(again.id)
    assert (restored.status, restored.phones, restored.tags) == ("active", ("+84903111222",), ("zalo",))
    assert crm.interactions.get(logged.id).customer_id == again.id
    assert crm.customers.get(an.id).tags == ("vip",)
