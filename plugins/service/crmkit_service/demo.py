"""The demo contribution: realistic cases in Vietnamese and English, with replies, notes and every status; SLA rules
for loyalty's Gold and Diamond members (their cases are timed by them when loyalty runs), satisfaction answers on
resolved cases and a case the customer reopened.

Written through ``crm.service`` (so SLA times, interactions and the audit log are what real use gives), all in
one transaction, deterministically from the demo's seed.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from crmkit.vncalendar import fold_name

if TYPE_CHECKING:
    from crmkit import CRM

#: (subject, description, category, channel, priority, first reply, customer's answer)
CASES = (
    (
        "Máy lạnh không lạnh sau khi lắp đặt",
        "Khách báo máy lạnh mới lắp 3 ngày chỉ thổi gió, không lạnh.",
        "repair",
        "phone",
        "high",
        "Dạ, kỹ thuật viên sẽ đến kiểm tra vào sáng mai, anh/chị vui lòng giữ máy giúp em.",
        "Cảm ơn em, sáng mai nhà chị có người.",
    ),
    (
        "Giao hàng trễ đơn hàng",
        "Đơn đặt từ thứ Hai, hẹn giao thứ Tư nhưng đến nay chưa nhận được.",
        "delivery",
        "chat",
        "normal",
        "Em đã kiểm tra với bên vận chuyển, đơn sẽ giao trong hôm nay ạ.",
        "Ok em, chị chờ.",
    ),
    (
        "Xuất hoá đơn VAT",
        "Công ty cần hoá đơn đỏ cho đơn hàng tháng trước, gửi về email kế toán.",
        "billing",
        "email",
        "low",
        "Dạ, phòng kế toán sẽ gửi hoá đơn điện tử trong 2 ngày làm việc.",
        None,
    ),
    (
        "Đổi size áo",
        "Khách muốn đổi áo size M sang L, còn nguyên tem mác.",
        "returns",
        "in_person",
        "normal",
        "Cửa hàng đã đổi size cho khách tại quầy.",
        None,
    ),
    (
        "Bảo hành máy lọc nước",
        "Máy lọc nước rò rỉ ở lõi số 2, còn hạn bảo hành 8 tháng.",
        "warranty",
        "phone",
        "high",
        "Em đã tạo phiếu bảo hành, hãng sẽ liên hệ lại trong 24 giờ.",
        "Đến giờ chưa thấy ai gọi.",
    ),
    (
        "Refund for a cancelled order",
        "Customer cancelled order before shipping and asks when the refund arrives.",
        "billing",
        "email",
        "normal",
        "The refund was issued today; banks take 3–5 working days to show it.",
        "Thanks, I'll check next week.",
    ),
    (
        "Cannot log in to the customer portal",
        "Password reset e-mail never arrives.",
        "account",
        "web",
        "urgent",
        "We resent the reset link from a new sender address; please check spam too.",
        "Got it now, thank you!",
    ),
    (
        "Wrong item delivered",
        "Ordered the blue kettle, received a red one.",
        "delivery",
        "social",
        "normal",
        "Sorry about that — a courier will swap it tomorrow morning.",
        None,
    ),
    (
        "Khiếu nại thái độ nhân viên",
        "Khách phản ánh nhân viên cửa hàng Quận 3 trả lời thiếu lịch sự.",
        "complaint",
        "phone",
        "urgent",
        "Chúng tôi thành thật xin lỗi, quản lý cửa hàng sẽ gọi lại cho anh/chị hôm nay.",
        None,
    ),
    (
        "Hỏi về chương trình tích điểm",
        "Khách hỏi cách đổi điểm lấy voucher.",
        "question",
        "chat",
        "low",
        "Anh/chị có thể đổi điểm trong mục Ưu đãi của ứng dụng ạ.",
        "Cảm ơn shop.",
    ),
)
NOTES = (
    "Đã gọi 2 lần không bắt máy, sẽ gọi lại buổi chiều.",
    "Escalated to the warehouse lead.",
    "Khách VIP, ưu tiên xử lý.",
    "Waiting for the supplier's answer on the part.",
)
RESOLUTIONS = (
    "Đã xử lý xong, khách xác nhận hài lòng.",
    "Replaced the item; customer confirmed.",
    "Đã hoàn tiền cho khách.",
    "Answered the question; nothing else needed.",
)
#: SLA rules the demo sets: (priority, customer group, first response, resolution, warn minutes before a breach).
RULES = (
    ("normal", "diamond", 60, 480, None),
    ("high", "diamond", 30, 240, None),
    ("normal", "gold", 120, 960, None),
    ("urgent", None, None, None, 10),
    ("high", None, None, None, 30),
)
#: Survey answers of resolved demo cases: (score, comment), drawn per case.
ANSWERS = (
    (5, "Nhân viên nhiệt tình, xử lý nhanh."),
    (5, "Great service, thank you!"),
    (4, "Ổn, nhưng phải chờ hơi lâu."),
    (4, None),
    (3, "Được, lần sau mong nhanh hơn."),
    (2, "Phải gọi nhiều lần mới có người nghe."),
    (1, "Still not fixed."),
)
#: What a customer writes back on a resolved case that is not fixed (it reopens the case).
REOPENING = "Máy vẫn còn lỗi như cũ, em kiểm tra lại giúp chị."
#: What happens to a demo case after its first reply, drawn per case.
ENDINGS = ("open", "waiting_on_customer", "waiting_on_third_party", "resolved", "closed", "new")


def populate(crm: CRM, customer_ids: list[int], seed: int) -> None:
    """Open about one case per 40 customers (at least 3), some with replies, notes and a later status."""
    if not customer_ids:
        return
    rng = random.Random(seed)
    users = [user.username for user in crm.users.list(active=True)]
    care = {
        team.name: [m for m in team.members if m in users] or users
        for team in crm.teams.list()
        if any(word in fold_name(team.name) for word in ("cham_soc", "cskh", "care", "support"))
    }
    count = max(3, len(customer_ids) // 40)
    reopened = False
    with crm.transaction():
        for priority, group, first, resolution, warn in RULES:
            crm.service.sla.set_rule(
                priority,
                customer_group=group,
                first_response_minutes=first,
                resolution_minutes=resolution,
                warn_minutes=warn,
                raise_priority=priority == "high" and group is None,
            )
        for customer_id in sorted(rng.sample(customer_ids, k=min(count, len(customer_ids)))):
            subject, description, category, channel, priority, answer, back = rng.choice(CASES)
            team = rng.choice(sorted(care)) if care else None
            agents = care[team] if team else users
            case = crm.service.open(
                customer_id,
                subject,
                description=description,
                channel=channel,
                category=category,
                priority=priority,
                assignee=rng.choice(agents) if agents else None,
                team=team,
            )
            ending = rng.choice(ENDINGS)
            if ending == "new":
                continue
            crm.service.reply(case.id, answer)
            if back and rng.random() < 0.6:
                crm.service.reply(case.id, back, direction="inbound")
            if rng.random() < 0.4:
                crm.service.note(case.id, rng.choice(NOTES))
            if ending in ("resolved", "closed"):
                crm.service.set_status(case.id, "resolved", resolution=rng.choice(RESOLUTIONS))
                if not reopened:  # one customer writes back: not fixed, the case reopens
                    crm.service.reply(case.id, REOPENING, direction="inbound")
                    reopened = True
                    continue
                if rng.random() < 0.7:
                    score, comment = rng.choice(ANSWERS)
                    crm.service.csat.record(case.id, score, comment)
                if ending == "closed":
                    crm.service.set_status(case.id, "closed")
            elif ending != "open":
                crm.service.set_status(case.id, ending)
