"""The QCI areas: the fixed vocabulary every question bank, KPI, score and action is filed under."""

from __future__ import annotations

import attrs


@attrs.frozen
class Area:
    """One QCI area; ``group`` gathers the four customer management activities."""

    key: str
    title: str
    group: str


CUSTOMER_MANAGEMENT = "customer management activities"

#: In the order of the QCI model (and of the radar chart, clockwise from the top).
AREAS: tuple[Area, ...] = (
    Area("analysis_planning", "Analysis & planning", "analysis & planning"),
    Area("value_proposition", "Value proposition", "value proposition"),
    Area("people_organization", "People & organization", "people & organization"),
    Area("information_technology", "Information & technology", "information & technology"),
    Area("process_management", "Process management", "process management"),
    Area("acquisition", "Acquisition", CUSTOMER_MANAGEMENT),
    Area("penetration", "Penetration", CUSTOMER_MANAGEMENT),
    Area("retention", "Retention", CUSTOMER_MANAGEMENT),
    Area("efficiency", "Efficiency", CUSTOMER_MANAGEMENT),
    Area("measuring_effect", "Measuring the effect", "measuring the effect"),
    Area("customer_experience", "Customer experience", "customer experience"),
)

AREA_KEYS: tuple[str, ...] = tuple(a.key for a in AREAS)
BY_KEY: dict[str, Area] = {a.key: a for a in AREAS}


def title(key: str) -> str:
    """The area's display title (``retention`` → ``Retention``)."""
    return BY_KEY[key].title
