def test_add_and_find(crm):
    crm.customers.add(name="Nguyễn Văn An", phone="0912 345 678")
    assert [c.name for c in crm.customers.find("nguyen van an")] == ["Nguyễn Văn An"]
