"""crmkit's plugin contract for loyalty: strict loading, export/erase coverage, migrations down and up."""

from loyalty_testkit import SALES

from crmkit.testing import PluginContract


class TestLoyaltyContract(PluginContract):
    plugin = "loyalty"
    with_plugins = (SALES,)

    def populate(self, crm, customer_id):
        crm.loyalty.create_program("default", "Khách hàng thân thiết")
        crm.loyalty.add_reward("gift", "Quà", 10)
        crm.loyalty.grant(customer_id, 50, "quà khai trương")
        crm.loyalty.redeem(customer_id, "gift")
