"""Mailing labels: Vietnamese address order, A4 sheets of 3 × 8, chosen by ids, tag or everyone."""

from __future__ import annotations

import re

import pytest

from crmkit import ValidationError

from .conftest import Shop

pytestmark = pytest.mark.crmkit_plugins("sales")


def test_labels_for_ids_a_tag_or_everyone_with_an_address(shop: Shop) -> None:
    crm = shop.crm
    for n in range(25):
        crm.customers.add(
            name=f"Trần Thị Mai {n}",
            tags=["hoi-cho-2026"],
            addresses=[
                {
                    "line1": f"{n + 1} Nguyễn Huệ",
                    "line2": "Tầng 3" if n == 0 else None,
                    "ward": "Phường Bến Nghé",
                    "district": "Quận 1",
                    "province": "TP. Hồ Chí Minh",
                    "postal_code": "700000",
                }
            ],
        )
    chosen = crm.sales.labels.render(customer_ids=[shop.an.id, shop.bob.id, shop.dist.id])
    assert (chosen.count, chosen.skipped) == (2, (shop.bob.id,))
    html = chosen.html
    assert re.search(
        r"<strong>Nguyễn Văn An</strong><br>12 Lý Thường Kiệt<br>Phường Hàng Bài, Quận Hoàn Kiếm<br>Hà Nội</div>", html
    ), html
    assert "@page { size: A4; margin: 0; }" in html and "grid-template-columns: repeat(3, 70mm)" in html
    assert "grid-template-rows: repeat(8, 37.125mm)" in html

    tagged = crm.sales.labels.render(tag="hoi-cho-2026")
    assert tagged.count == 25 and tagged.html.count('<section class="sheet">') == 2  # 24 on the first sheet
    assert "1 Nguyễn Huệ<br>Tầng 3<br>Phường Bến Nghé, Quận 1<br>TP. Hồ Chí Minh 700000" in tagged.html
    everyone = crm.sales.labels.render(everyone=True, layout="3x7")
    assert everyone.count == 27 and "Bob Smith" not in everyone.html
    assert everyone.html.count('<section class="sheet">') == 2  # 21 a sheet
    with pytest.raises(ValidationError) as error:
        crm.sales.labels.render(tag="x", everyone=True)
    assert "customers" in error.value.errors
    with pytest.raises(ValidationError):
        crm.sales.labels.render(everyone=True, layout="4x10")
