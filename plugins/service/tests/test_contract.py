"""crmkit's plugin contract for the service plugin: loads strictly, export and erase cover every case table,
every declared permission is enforced, lists and the API show exactly a user's scope, migrations go down and up."""

from __future__ import annotations

from crmkit.testing import PluginContract


class TestServiceContract(PluginContract):
    plugin = "service"

    def populate(self, crm, customer_id):
        case = crm.service.open(customer_id, "Máy giặt kêu to", description="Kêu khi vắt", priority="high")
        crm.service.reply(case.id, "Dạ em sẽ cử kỹ thuật viên")
        crm.service.note(case.id, "Kiểm tra lại bảo hành")

    def permission_calls(self):
        return {
            "service.read": lambda crm, cid: crm.service.list(customer_id=cid),
            "service.write": lambda crm, cid: crm.service.open(cid, "Hỏi giá"),
            "service.admin": lambda crm, cid: crm.service.run_due(),
        }

    def scoped_calls(self):
        return {
            "list": lambda crm, cid: crm.service.list(),
            "customer's cases": lambda crm, cid: crm.service.list(customer_id=cid),
            "profile section": lambda crm, cid: crm.service.summary(cid)["latest"],
        }
