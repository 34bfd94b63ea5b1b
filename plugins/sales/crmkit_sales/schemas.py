"""marshmallow schemas: the contract for everything the sales service accepts from outside.

The service loads every input through one of these (:func:`load`), so the Python API, the CLI
and imports reject the same things with the same messages, naming the field (and the line).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import marshmallow
from marshmallow import RAISE, Schema, fields, post_load, validate, validates, validates_schema

from crmkit.errors import ValidationError
from crmkit.money import MAX_MINOR
from crmkit.plugin_api import AwareDateTime, CleanSchema, utcnow
from crmkit_sales.base import MAX_ID
from crmkit_sales.pricing import CONDITION_OPS, MAX_QUANTITY, VAT_RATES, line_field

PRODUCT_KINDS = ("product", "service")
PAYMENT_METHODS = ("cash", "bank_transfer", "card", "cod", "momo", "zalopay", "vnpay", "cheque", "other")
APPOINTMENT_CHANNELS = ("in_person", "phone", "video", "chat", "email")
PRIORITIES = ("low", "normal", "high")
CONTRACT_STATUSES = ("draft", "active", "expired", "terminated", "renewed")

#: How far ahead of the CRM's clock (``crm.now()``) an order's ``placed_at`` may be: a till or phone whose clock runs a
#: little fast still records its orders; anything later is a mistake (orders count as purchases at once).
CLOCK_SKEW = timedelta(minutes=5)
#: The CRM's time while :func:`load` validates (schemas are shared by every CRM in the process).
_NOW: ContextVar[datetime | None] = ContextVar("crmkit_sales_now", default=None)
#: The days and moments documents and appointments may fall on: anything else is a typo, and dates a few days
#: from the calendar's ends would overflow when a period is added to them.
DAYS = validate.Range(min=date(1900, 1, 1), max=date(2999, 12, 31))
MOMENTS = validate.Range(min=datetime(1900, 1, 1, tzinfo=UTC), max=datetime(3000, 1, 1, tzinfo=UTC))


class ExactDecimal(fields.Field):
    """A Decimal from a string, int or Decimal with at most ``places`` decimals, in ``[minimum, maximum]``.

    Floats are refused: ``0.1`` is not exactly one tenth, and money must not drift.
    """

    def __init__(
        self,
        places: int,
        *,
        minimum: Decimal | None = None,
        maximum: Decimal | None = None,
        positive: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.places, self.minimum, self.maximum, self.positive = places, minimum, maximum, positive

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if isinstance(value, (float, bool)):
            raise marshmallow.ValidationError('give an exact number (a string such as "2.5"), not a float')
        try:
            number = Decimal(str(value).strip().replace(",", ".")) if isinstance(value, str) else Decimal(value)
        except (InvalidOperation, TypeError, ValueError):
            raise marshmallow.ValidationError(f"not a number: {value!r}") from None
        if not number.is_finite():
            raise marshmallow.ValidationError("must be a finite number")
        try:
            if number != number.quantize(Decimal(1).scaleb(-self.places)):
                raise marshmallow.ValidationError(f"at most {self.places} decimal places")
            whole = number.quantize(Decimal(1)) if number == number.to_integral_value() else number.normalize()
        except InvalidOperation:  # more digits than decimal arithmetic holds: far beyond any quantity or rate
            raise marshmallow.ValidationError(f"too large a number: {value!r}") from None
        if self.positive and number <= 0:
            raise marshmallow.ValidationError("must be greater than 0")
        if self.minimum is not None and number < self.minimum:
            raise marshmallow.ValidationError(f"must be at least {self.minimum}")
        if self.maximum is not None and number > self.maximum:
            raise marshmallow.ValidationError(f"must be at most {self.maximum}")
        return whole

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else str(value)


class TaxRate(ExactDecimal):
    """A VAT rate: 0, 0.05, 0.08 or 0.1 (also written 0%, 5%, 8%, 10%)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(4, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        percent = isinstance(value, str) and value.strip().endswith("%")
        rate = super()._deserialize(value.strip().rstrip("%") if percent else value, attr, data, **kwargs)
        rate = rate / 100 if percent else rate
        if rate not in VAT_RATES:
            raise marshmallow.ValidationError("VAT rate must be one of 0%, 5%, 8%, 10%")
        return rate


class Currency(fields.String):
    """An ISO 4217 code, upper-cased (``vnd`` → ``VND``)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip().upper()
        if len(text) != 3 or not text.isalpha():
            raise marshmallow.ValidationError("must be a three-letter currency code such as VND or USD")
        return text


class Ref(fields.Field):
    """A record named by its id (a whole number) or its name, such as a deal's ``pipeline`` and ``stage``.

    Anything else (a float, a boolean, a list, an object) is refused here, before it reaches a query.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int | str:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, str))
            or (isinstance(value, int) and not 1 <= value <= MAX_ID)
        ):
            raise marshmallow.ValidationError("give an id (a whole number) or a name")
        return value


def _text(max_length: int, **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=max_length), **kwargs)


def _minor(**kwargs: Any) -> fields.Integer:
    """An amount in minor units (whole đồng; cents): a non-negative integer up to ``MAX_MINOR``."""
    return fields.Integer(strict=True, validate=validate.Range(min=0, max=MAX_MINOR), **kwargs)


def _id(**kwargs: Any) -> fields.Integer:
    """The id of a record (a customer, a deal …): a whole number from 1 to ``MAX_ID``."""
    return fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_ID), **kwargs)


class _Strict(CleanSchema):
    class Meta:
        unknown = RAISE

    @marshmallow.pre_load
    def _blank_to_none(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, Mapping):
            return {k: (None if isinstance(v, str) and not v.strip() else v) for k, v in data.items()}
        return data


class ProductSchema(_Strict):
    MULTILINE = frozenset({"description"})

    sku = _text(64, required=True)
    name = _text(300, required=True)
    kind = fields.String(load_default="product", validate=validate.OneOf(PRODUCT_KINDS))
    unit = _text(30, load_default="cái")
    category = _text(100, allow_none=True)
    price_minor = _minor(required=True)
    currency = Currency(required=True)
    cost_minor = _minor(allow_none=True)
    tax_rate = TaxRate(load_default=Decimal("0.1"))
    description = fields.String(allow_none=True)
    active = fields.Boolean(load_default=True)


class ConditionSchema(_Strict):
    field = _text(100, required=True)
    op = fields.String(load_default="=", validate=validate.OneOf(CONDITION_OPS))
    value = fields.Raw(required=True)


def _check_range(data: Mapping[str, Any], start: str, end: str) -> None:
    if data.get(start) is not None and data.get(end) is not None and data[end] < data[start]:
        raise marshmallow.ValidationError(f"ends before it starts ({start} {data[start]})", end)


class PriceListSchema(_Strict):
    name = _text(200, required=True)
    currency = Currency(required=True)
    group_tag = _text(100, allow_none=True)
    group_condition = fields.Nested(ConditionSchema, allow_none=True)
    valid_from = fields.Date(allow_none=True)
    valid_until = fields.Date(allow_none=True)
    active = fields.Boolean(load_default=True)

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("group_tag") and data.get("group_condition"):
            raise marshmallow.ValidationError("give a tag or a condition, not both", "group_condition")
        _check_range(data, "valid_from", "valid_until")


class PriceSchema(_Strict):
    price_minor = _minor(required=True)
    min_quantity = ExactDecimal(3, positive=True, maximum=MAX_QUANTITY, load_default=Decimal(1))


class StageSchema(_Strict):
    name = _text(100, required=True)
    probability = ExactDecimal(4, minimum=Decimal(0), maximum=Decimal(1), required=True)
    outcome = fields.String(allow_none=True, load_default=None, validate=validate.OneOf(("won", "lost")))


class PipelineSchema(_Strict):
    name = _text(200, required=True)
    stages = fields.List(fields.Nested(StageSchema), required=True, validate=validate.Length(min=1))

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        names = [s["name"].casefold() for s in data["stages"]]
        if len(set(names)) != len(names):
            raise marshmallow.ValidationError("stage names must be distinct", "stages")
        outcomes = [s["outcome"] for s in data["stages"]]
        if outcomes.count("won") > 1:
            raise marshmallow.ValidationError("a pipeline has one won stage", "stages")
        for stage in data["stages"]:
            expected = {"won": Decimal(1), "lost": Decimal(0)}.get(stage["outcome"] or "")
            if expected is not None and stage["probability"] != expected:
                raise marshmallow.ValidationError(
                    f"the {stage['outcome']} stage {stage['name']!r} must have probability {expected}", "stages"
                )
        if all(o is not None for o in outcomes):
            raise marshmallow.ValidationError("a pipeline needs at least one open stage", "stages")


class DealSchema(_Strict):
    customer_id = _id(required=True)
    pipeline = Ref(required=True)
    stage = Ref(allow_none=True)  # default: the first stage
    title = _text(300, required=True)
    owner = _text(100, allow_none=True)
    amount_minor = _minor(load_default=0)
    currency = Currency(required=True)
    expected_close = fields.Date(allow_none=True)
    source = _text(100, allow_none=True)
    opened_at = AwareDateTime(allow_none=True)


class DealUpdateSchema(_Strict):
    title = _text(300)
    owner = _text(100, allow_none=True)
    amount_minor = _minor()
    currency = Currency()
    expected_close = fields.Date(allow_none=True)
    source = _text(100, allow_none=True)


class LineSchema(_Strict):
    product_id = _id()
    sku = _text(64)
    quantity = ExactDecimal(3, positive=True, maximum=MAX_QUANTITY, required=True)
    discount_percent = ExactDecimal(2, minimum=Decimal(0), maximum=Decimal(100), allow_none=True)
    discount_minor = _minor(allow_none=True)
    tax_rate = TaxRate(allow_none=True)

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("product_id" in data) == ("sku" in data):
            raise marshmallow.ValidationError("give the product's sku or its product_id", "sku")
        if data.get("discount_percent") is not None and data.get("discount_minor") is not None:
            raise marshmallow.ValidationError("give a percentage or an amount, not both", "discount_minor")

    @post_load
    def _drop_none(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {k: v for k, v in data.items() if v is not None}


class _Document(_Strict):
    MULTILINE = frozenset({"notes"})

    customer_id = _id(required=True)
    lines = fields.List(fields.Nested(LineSchema), required=True, validate=validate.Length(min=1))
    currency = Currency(allow_none=True)
    owner = _text(100, allow_none=True)
    deal_id = _id(allow_none=True)
    price_list_id = _id(allow_none=True)
    notes = fields.String(allow_none=True)


class QuoteSchema(_Document):
    issued_on = fields.Date(allow_none=True, validate=DAYS)
    valid_until = fields.Date(allow_none=True, validate=DAYS)
    valid_days = fields.Integer(strict=True, load_default=30, validate=validate.Range(min=1, max=365))

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        _check_range(data, "issued_on", "valid_until")


class QuoteRevisionSchema(_Strict):
    MULTILINE = frozenset({"notes"})

    lines = fields.List(fields.Nested(LineSchema), validate=validate.Length(min=1))
    valid_until = fields.Date()
    notes = fields.String(allow_none=True)
    price_list_id = _id(allow_none=True)


class OrderSchema(_Document):
    MULTILINE = frozenset({"notes", "shipping_address"})

    placed_at = AwareDateTime(allow_none=True)
    shipping_name = _text(300, allow_none=True)
    shipping_phone = _text(50, allow_none=True)
    shipping_address = fields.String(allow_none=True)

    @validates("placed_at")
    def _not_in_future(self, value: datetime | None, **kwargs: Any) -> None:
        now = _NOW.get() or utcnow()
        if value is not None and value > now + CLOCK_SKEW:
            raise marshmallow.ValidationError(
                f"{value.isoformat()} is in the future (now {now.isoformat(timespec='seconds')}): an order is placed "
                f"now or in the past (clocks may run up to {CLOCK_SKEW.seconds // 60} minutes ahead)"
            )


class PaymentSchema(_Strict):
    MULTILINE = frozenset({"note"})

    amount_minor = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=MAX_MINOR))
    method = fields.String(load_default="bank_transfer", validate=validate.OneOf(PAYMENT_METHODS))
    paid_at = AwareDateTime(allow_none=True)
    reference = _text(200, allow_none=True)
    note = fields.String(allow_none=True)


class RefundSchema(_Strict):
    amount_minor = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=MAX_MINOR))
    reason = fields.String(allow_none=True)
    at = AwareDateTime(allow_none=True)


class ContractSchema(_Strict):
    MULTILINE = frozenset({"notes"})

    customer_id = _id(required=True)
    order_id = _id(allow_none=True)
    number = _text(50, required=True)
    title = _text(300, required=True)
    start_date = fields.Date(required=True)
    end_date = fields.Date(allow_none=True)
    renewal_date = fields.Date(allow_none=True)
    value_minor = _minor(required=True)
    currency = Currency(required=True)
    status = fields.String(load_default="active", validate=validate.OneOf(CONTRACT_STATUSES))
    owner = _text(100, allow_none=True)
    notes = fields.String(allow_none=True)

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        _check_range(data, "start_date", "end_date")
        _check_range(data, "start_date", "renewal_date")


class AppointmentSchema(_Strict):
    MULTILINE = frozenset({"notes"})

    customer_id = _id(required=True)
    employee = _text(100, allow_none=True)  # a user; the acting user by default
    deal_id = _id(allow_none=True)
    subject = _text(300, required=True)
    starts_at = AwareDateTime(required=True, validate=MOMENTS)
    ends_at = AwareDateTime(allow_none=True, validate=MOMENTS)
    duration_minutes = fields.Integer(strict=True, load_default=60, validate=validate.Range(min=1, max=24 * 60))
    channel = fields.String(load_default="in_person", validate=validate.OneOf(APPOINTMENT_CHANNELS))
    place = _text(300, allow_none=True)
    notes = fields.String(allow_none=True)

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("ends_at") is not None and data["ends_at"] <= data["starts_at"]:
            raise marshmallow.ValidationError(
                f"ends before it starts (starts_at {data['starts_at'].isoformat()})", "ends_at"
            )


class TaskSchema(_Strict):
    MULTILINE = frozenset({"notes"})

    customer_id = _id(required=True)
    employee = _text(100, allow_none=True)  # a user; the acting user by default
    deal_id = _id(allow_none=True)
    title = _text(300, required=True)
    due_at = AwareDateTime(required=True)
    priority = fields.String(load_default="normal", validate=validate.OneOf(PRIORITIES))
    notes = fields.String(allow_none=True)


class SellerSchema(_Strict):
    MULTILINE = frozenset({"address"})

    name = _text(300, required=True)
    address = fields.String(allow_none=True)
    tax_code = _text(20, allow_none=True)
    phone = _text(50, allow_none=True)
    email = _text(320, allow_none=True)
    bank_account = fields.String(allow_none=True)


def load(
    schema: Schema, data: Mapping[str, Any], *, partial: bool = False, now: datetime | None = None
) -> dict[str, Any]:
    """Validate ``data`` through ``schema``; a ``crmkit.ValidationError`` names every bad field (and line).
    ``now`` (``crm.now()``) is what "in the future" is measured from; the system clock without it."""
    token = _NOW.set(now)
    try:
        return schema.load(dict(data), partial=partial)
    except marshmallow.ValidationError as exc:
        raise ValidationError(_numbered_lines(exc.messages_dict)) from None
    finally:
        _NOW.reset(token)


def _numbered_lines(messages: Mapping[str, Any]) -> dict[str, Any]:
    """Errors of a document's lines named like import rows, counting from 1: ``lines.1.quantity``."""
    result: dict[str, Any] = {}
    for key, value in messages.items():
        if key == "lines" and isinstance(value, Mapping) and all(isinstance(n, int) for n in value):
            for n, line in value.items():
                found = line.items() if isinstance(line, Mapping) else [("_schema", line)]
                for field, text in found:
                    result[line_field(n + 1, field)] = text
        else:
            result[key] = value
    return result
