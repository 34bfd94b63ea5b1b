"""IDIC settings (stored as CRM settings ``idic.<name>``) with their defaults, and the step names."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmkit.errors import ValidationError

if TYPE_CHECKING:
    from crmkit import CRM

STEPS = ("identify", "differentiate", "interact", "customize")
PREFIX = "idic."
TIERS = ("most_valuable", "most_growable", "maintain", "below_zero", "unknown")
NEEDS_METHODS = ("rules", "kmeans")
#: Bounds of ``needs_clusters`` (k-means' k): one cluster says nothing; more than 50 groups no manager reads.
CLUSTERS = (2, 50)

DEFAULTS: dict[str, Any] = {
    # Identify
    "auto_merge_threshold": 0.95,  # pairs at or above it merge automatically (unless in conflict)
    "review_threshold": 0.5,  # pairs at or above it (and below the auto threshold) go to the review queue
    "shared_limit": 3,  # an identifier held by more customers than this is shared (family, company): no match
    "social_keys": ["zalo", "facebook", "instagram", "tiktok"],  # customer.attributes keys holding handles
    "inbox_tag": "idic:inbox",  # interactions logged on customers with this tag come from unknown senders
    # Differentiate
    "value_source": "auto",  # auto | clv | pcv | rfm | net
    "tiers": [["most_valuable", 20], ["most_growable", 30]],  # top 20 %, next 30 %; other positive: maintain
    "needs_tag_prefix": "needs:",  # a tag "needs:family" puts the customer in needs group "family"
    "topics": {
        "bảo hành": "service",
        "warranty": "service",
        "sửa": "service",
        "repair": "service",
        "giá": "price",
        "price": "price",
        "khuyến mãi": "price",
        "discount": "price",
        "giao hàng": "delivery",
        "delivery": "delivery",
    },
    "needs_method": "rules",  # rules | kmeans (needs scikit-learn: the `kmeans` extra)
    "needs_clusters": 5,  # k of k-means (fewer when fewer customers have evidence)
    # Interact
    "rhythm_days": {"most_valuable": 14, "most_growable": 30, "maintain": 90, "unknown": 60, "below_zero": None},
    "channel_order": ["phone", "sms", "email", "chat", "social"],
    "default_owner": None,
}


def setting(crm: CRM, name: str) -> Any:
    """The stored value of setting ``name``, else its default (checked: a value stored by hand can be wrong)."""
    return check_setting(name, crm.settings.get(PREFIX + name, DEFAULTS[name]))


def check_setting(name: str, value: Any) -> Any:
    """``value`` if it suits setting ``name`` (the needs method and k are checked here); ``ValidationError``
    naming the setting otherwise."""
    if name == "needs_method" and value not in NEEDS_METHODS:
        raise ValidationError(f"unknown needs method {value!r} (one of {', '.join(NEEDS_METHODS)})", field=name)
    if name == "needs_clusters" and (
        not isinstance(value, int) or isinstance(value, bool) or not CLUSTERS[0] <= value <= CLUSTERS[1]
    ):
        raise ValidationError(f"must be a whole number from {CLUSTERS[0]} to {CLUSTERS[1]}, not {value!r}", field=name)
    return value


def check_step(step: str, field: str = "step") -> str:
    """``step`` if it is one of the four IDIC steps; ``ValidationError`` naming ``field`` otherwise."""
    if step not in STEPS:
        raise ValidationError(f"unknown step {step!r} (one of {', '.join(STEPS)})", field=field)
    return step
