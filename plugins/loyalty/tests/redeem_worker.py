"""A separate process redeeming the same points as its siblings (run by test_redemption.py).

Usage: redeem_worker.py DATABASE_URL CUSTOMER_ID REWARD ATTEMPTS READY_FILE GO_FILE
Prints ``successes refusals``; anything else (a deadlock, a lock timeout) fails loudly.
"""

import sys
import time
from pathlib import Path

import loyalty_testkit as kit

from crmkit import CRM, ValidationError


def main(url: str, customer_id: int, reward: str, attempts: int, ready: Path, go: Path) -> None:
    crm = CRM(url, plugins=kit.PLUGINS, strict=True)
    ready.touch()
    deadline = time.monotonic() + 60
    while not go.exists():
        if time.monotonic() > deadline:
            raise SystemExit("never told to go")
        time.sleep(0.01)
    won = lost = 0
    for _ in range(attempts):
        try:
            crm.loyalty.redeem(customer_id, reward)
            won += 1
        except ValidationError:
            lost += 1
    crm.close()
    print(won, lost)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), Path(sys.argv[5]), Path(sys.argv[6]))
