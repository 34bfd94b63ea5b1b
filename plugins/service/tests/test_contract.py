"""crmkit's plugin contract for the service plugin: loads strictly, export and erase cover every case table,
every declared permission is enforced, lists and the API show exactly a user's scope, migrations go down and up."""

from __future__ import annotations

from crmkit import ValidationError
from crmkit.testing import PluginContract


class TestServiceContract(PluginContract):
    plugin = "service"

    def populate(self, crm, customer_id):
        case = crm.service.open(customer_id, "Máy giặt kêu to", description="Kêu khi vắt", priority="high")
        crm.service.reply(case.id, "Dạ em sẽ cử kỹ thuật viên")
        crm.service.note(case.id, "Kiểm tra lại bảo hành")
        crm.service.attachments.add(case.id, "ảnh máy giặt.jpg", storage_key="cases/may-giat.jpg")
        email = f"khach{customer_id}@example.vn"
        crm.customers.update(customer_id, emails=[email])
        crm.service.intake.web_form({"email": email, "subject": "Máy giặt lại kêu", "message": "Kêu to"})
        try:
            crm.service.intake.web_form({"email": email, "subject": "", "message": "Thiếu chủ đề"})
        except ValidationError:
            pass  # refused, and kept in service_rejected_payloads with the customer

    def permission_calls(self):
        return {
            "service.read": lambda crm, cid: crm.service.list(customer_id=cid),
            "service.write": lambda crm, cid: crm.service.open(cid, "Hỏi giá"),
            "service.admin": lambda crm, cid: crm.service.run_due(),
            "service.intake": lambda crm, cid: crm.service.intake.web_form(
                {"email": "an@example.vn", "subject": "Hỏi giá", "message": "?"}
            ),
        }

    def scoped_calls(self):
        return {
            "list": lambda crm, cid: crm.service.list(),
            "customer's cases": lambda crm, cid: crm.service.list(customer_id=cid),
            "profile section": lambda crm, cid: crm.service.summary(cid)["latest"],
        }
