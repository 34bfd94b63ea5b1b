"""marshmallow schemas: the contract for every customer and interaction coming from outside.

``CustomerSchema`` validates and normalizes (E.164 phones, lower-case e-mails, NFC names)
and is what the API, the CLI and imports all load through.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any, ClassVar

from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, post_load, pre_load, validate, validates_schema

from crmkit.core.jsonable import decode_cursor, to_jsonable
from crmkit.core.models import CHANNELS, DIRECTIONS, GENDERS, KINDS, LIFECYCLE_STAGES
from crmkit.core.phones import PhoneError, normalize_phone
from crmkit.core.text import clean_name, control_character, fold, has_control_character, normalize_email
from crmkit.core.types import utcnow
from crmkit.errors import ValidationError as CRMValidationError
from crmkit.vncalendar import EARLIEST_ZONE, zone_named

#: The largest id a database column holds (64-bit): larger numbers are refused as input, not overflowed.
MAX_ID = 2**63 - 1


def beyond_columns(value: Any) -> bool:
    """Whether ``value`` is an int no 64-bit column holds: as an id it names no row (not an overflow)."""
    return isinstance(value, int) and not -MAX_ID - 1 <= value <= MAX_ID


def check_limit(limit: Any, maximum: int = 1000) -> None:
    """Refuse a page size outside 1..``maximum`` (``ValidationError`` on ``limit``) before it reaches SQL."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= maximum:
        raise CRMValidationError(f"must be between 1 and {maximum}", field="limit")


#: Accepted spellings, folded (so ``Nữ``, ``NỮ`` and ``nu`` all match ``nu``).
GENDER_ALIASES = {
    "f": "female",
    "female": "female",
    "nu": "female",
    "woman": "female",
    "m": "male",
    "male": "male",
    "nam": "male",
    "man": "male",
    "other": "other",
    "khac": "other",
}


#: Tab, line feed and carriage return: text in a multi-line field.
_MULTILINE_WHITESPACE = str.maketrans("", "", "\t\n\r")


def first_control_character(value: Any, *, multiline: bool = False) -> str | None:
    """The first control character in a loaded value (text, or text inside lists and mappings, keys too), described."""
    if type(value) is str:  # the common case first: an exact type check is the cheapest
        return control_character(value, multiline=multiline)
    if isinstance(value, Mapping):
        items: Any = (item for pair in value.items() for item in pair)
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        return control_character(value, multiline=multiline) if isinstance(value, str) else None
    return next((found for item in items if (found := first_control_character(item, multiline=multiline))), None)


class CleanSchema(Schema):
    """A schema that refuses control characters in every text it loads, naming each field that has one.

    Every input schema (core and plugins) derives from it; fields in ``MULTILINE`` may hold tab and newlines.
    """

    MULTILINE: ClassVar[frozenset[str]] = frozenset()

    @pre_load
    def _refuse_control_characters(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, Mapping) and (errors := control_character_errors(data, self.MULTILINE)):
            raise ValidationError(errors)
        return data


def control_character_errors(
    data: Mapping[Any, Any], multiline: frozenset[str] = frozenset(), prefix: str = ""
) -> dict[str, list[str]]:
    """One error per field of ``data`` holding a control character (named ``prefix`` + name), for rows no schema
    loads (an import's cells); fields in ``multiline`` may hold tab and newlines. Empty when the row is clean."""
    if _clean_row(data, multiline):
        return {}
    return {
        f"{prefix}{name}": [f"contains a control character ({found}); only printable text is accepted"]
        for name, value in data.items()
        if (found := first_control_character(value, multiline=name in multiline))
    }


def _clean_row(data: Mapping[str, Any], multiline: frozenset[str]) -> bool:
    """Whether a row of plain values (text, lists of text, numbers) holds no control character, in one regex
    search over all its text — nearly every row is clean; False also when its shape needs the field-by-field check."""
    parts: list[str] = []
    for name, value in data.items():
        kind = type(value)
        if kind is str:
            parts.append(value.translate(_MULTILINE_WHITESPACE) if name in multiline else value)
        elif kind is list and all(type(item) is str for item in value):
            parts.extend(item.translate(_MULTILINE_WHITESPACE) if name in multiline else item for item in value)
        elif value is not None and kind not in (int, float, bool):
            return False
        parts.append(name if type(name) is str else "\x00")
    return not has_control_character(" ".join(parts))


class Name(fields.String):
    """Text with Unicode composed (NFC) and whitespace collapsed; empty becomes None."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str | None:
        text = super()._deserialize(value, attr, data, **kwargs)
        return clean_name(text) or None

    def _validate(self, value: Any) -> None:
        if value is not None:  # blank became None: nothing left to measure
            super()._validate(value)


class Email(fields.String):
    """An e-mail address, trimmed and lower-cased."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        try:
            return normalize_email(super()._deserialize(value, attr, data, **kwargs))
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class Phone(fields.String):
    """A phone number in E.164; national numbers take the schema's ``default_country``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        country = getattr(self.root, "default_country", "VN")
        try:
            return normalize_phone(text, country)
        except PhoneError as exc:
            raise ValidationError(str(exc)) from None


class FlexibleDate(fields.Date):
    """ISO dates (1990-08-15) and the day-first form used in Vietnam (15/08/1990)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:
        if isinstance(value, str) and "/" in value:
            try:
                result = datetime.strptime(value.strip(), "%d/%m/%Y").date()  # noqa: DTZ007 - a date: no zone applies
            except ValueError:
                raise ValidationError(f"not a valid date: {value!r} (use YYYY-MM-DD or DD/MM/YYYY)") from None
        else:
            result = super()._deserialize(value, attr, data, **kwargs)
        if result > _now(self).astimezone(EARLIEST_ZONE).date():  # not yet that day anywhere on earth
            raise ValidationError("date is in the future")
        return result


class Gender(fields.String):
    """female / male / other, accepting Vietnamese (nữ, nam) and one-letter forms."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = fold(super()._deserialize(value, attr, data, **kwargs))
        try:
            return GENDER_ALIASES[text]
        except KeyError:
            raise ValidationError(f"must be one of {', '.join(GENDERS)}") from None


class AwareDateTime(fields.DateTime):
    """A datetime with a time zone, converted to UTC; a naive one is refused rather than guessed."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        result = value if isinstance(value, datetime) else super()._deserialize(value, attr, data, **kwargs)
        if _is_naive(result):
            raise ValidationError(_NAIVE.format(result.isoformat()))
        try:
            return result.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00+01:00 is before the first representable UTC moment
            raise ValidationError("is out of range") from None


_NAIVE = "needs a time zone, e.g. {}+07:00 or …Z (naive times are refused, not guessed)"


class CustomerReference(fields.Integer):
    """A customer attribute holding another customer's id (``referred_by``): exports write that customer's
    external id and imports resolve it back, so a round trip keeps the link, not the number."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, validate=validate.Range(min=1), **kwargs)


class CustomerSince(fields.Field):
    """When someone became a customer, in UTC: a date-time with a time zone, or a date (2019-03-01,
    01/03/2019: that day's first moment in the business's time zone); never in the future."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if isinstance(value, datetime):
            result = value
        elif isinstance(value, date):
            result = self._first_moment(value)
        elif isinstance(value, str) and value.strip():
            result = self._parse(value.strip())
        else:
            raise ValidationError("must be a date (YYYY-MM-DD or DD/MM/YYYY) or a date-time with a time zone")
        if _is_naive(result):
            raise ValidationError(_NAIVE.format(result.isoformat()))
        result = result.astimezone(UTC)
        if result > _now(self):
            raise ValidationError("is in the future")
        return result

    def _parse(self, text: str) -> datetime:
        try:
            if "/" in text:
                return self._first_moment(datetime.strptime(text, "%d/%m/%Y").date())  # noqa: DTZ007 - a local date
            if len(text) <= 10:
                return self._first_moment(date.fromisoformat(text))
            return datetime.fromisoformat(text)
        except ValueError:
            raise ValidationError(
                f"not a valid date or date-time: {text!r} (use YYYY-MM-DD, DD/MM/YYYY or 2019-03-01T09:30+07:00)"
            ) from None

    def _first_moment(self, day: date) -> datetime:
        zone = getattr(self.root, "zone", None)
        return datetime.combine(day, time(), (zone() if callable(zone) else zone) or zone_named(None))


def _now(field: fields.Field) -> datetime:
    """The CRM's time for a field's "not in the future" check: its schema's ``now`` (``crm.now``), else the system
    clock (a schema used without a CRM)."""
    now = getattr(field.root, "now", None)
    return now() if callable(now) else utcnow()


def _is_naive(value: datetime) -> bool:
    return value.tzinfo is None or value.utcoffset() is None


def aware_utc(value: Any, field: str) -> datetime:
    """A datetime argument of a service call in UTC; ``crmkit.ValidationError`` naming ``field`` otherwise."""
    if not isinstance(value, datetime):
        raise CRMValidationError(f"must be a datetime, got {value!r}", field=field)
    if _is_naive(value):
        raise CRMValidationError(_NAIVE.format(value.isoformat()), field=field)
    return value.astimezone(UTC)


def read_cursor(cursor: str, field: str, *types: type) -> list[Any]:
    """The values of a keyset cursor handed back by a caller, checked against ``types``.

    A cursor that was not produced by crmkit (or by another listing) raises
    ``crmkit.ValidationError`` naming ``field`` instead of failing in SQL.
    """
    try:
        values = decode_cursor(cursor, len(types))
    except (ValueError, TypeError):
        values = None
    if values is None or not all(isinstance(v, ty) and not isinstance(v, bool) for v, ty in zip(values, types)):
        raise CRMValidationError(
            f"invalid cursor {cursor!r}: pass back the next_cursor of the previous page", field=field
        )
    return values


class AddressSchema(CleanSchema):
    """A postal address."""

    class Meta:
        unknown = RAISE

    line1 = Name(required=True, validate=validate.Length(min=1, max=300))
    line2 = Name(allow_none=True, validate=validate.Length(max=300))
    ward = Name(allow_none=True, validate=validate.Length(max=100))
    district = Name(allow_none=True, validate=validate.Length(max=100))
    city = Name(allow_none=True, validate=validate.Length(max=100))
    province = Name(allow_none=True, validate=validate.Length(max=100))
    postal_code = fields.String(allow_none=True, validate=validate.Length(max=20))
    country = fields.String(allow_none=True, validate=validate.Regexp(r"^[A-Za-z]{2}$"))
    label = fields.String(allow_none=True, validate=validate.Length(max=50))


class MembershipSchema(CleanSchema):
    """A person's membership in an organization."""

    organization_id = fields.Integer(required=True, strict=True, validate=validate.Range(1, MAX_ID))
    role = fields.String(allow_none=True, validate=validate.Length(max=100))


class CustomerSchema(CleanSchema):
    """A customer as given by a caller, an import row or the CLI (all fields optional on update)."""

    MULTILINE = frozenset({"attributes"})  # custom text fields may be notes of several lines

    class Meta:
        unknown = RAISE

    external_id = fields.String(allow_none=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(validate=validate.OneOf(KINDS))
    name = Name(validate=validate.Length(min=1, max=300))
    given_name = Name(allow_none=True, validate=validate.Length(max=150))
    family_name = Name(allow_none=True, validate=validate.Length(max=150))
    email = Email(allow_none=True)
    emails = fields.List(Email())
    phone = Phone(allow_none=True)
    phones = fields.List(Phone())
    addresses = fields.List(fields.Nested(AddressSchema))
    birth_date = FlexibleDate(allow_none=True)
    gender = Gender(allow_none=True)
    lifecycle_stage = fields.String(validate=validate.OneOf(LIFECYCLE_STAGES))
    owner = fields.String(allow_none=True, validate=validate.Length(max=100))
    country = fields.String(
        allow_none=True, validate=validate.Regexp(r"^[A-Za-z]{2}$", error="must be a two-letter ISO country code")
    )
    city = Name(allow_none=True, validate=validate.Length(max=100))
    province = Name(allow_none=True, validate=validate.Length(max=100))
    tags = fields.List(fields.String(validate=validate.Length(min=1, max=100)))
    consents = fields.Dict(keys=fields.String(validate=validate.OneOf(CHANNELS)), values=fields.Boolean())
    organizations = fields.List(fields.Nested(MembershipSchema))
    attributes = fields.Dict(keys=fields.String())
    created_at = CustomerSince()  # customer since: the original date when migrating from another system

    def __init__(
        self,
        *args: Any,
        default_country: str = "VN",
        attribute_fields: Mapping[str, fields.Field] | None = None,
        channels: tuple[str, ...] = CHANNELS,
        zone: Callable[[], tzinfo] | None = None,
        now: Callable[[], datetime] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.default_country = default_country
        self.zone = zone  # the business's time zone (a date of ``created_at`` begins there); None: the default
        self.now = now  # the CRM's clock (``crm.now``): ``created_at`` and birth dates may not be after it
        self.attribute_schema = _attribute_schema(attribute_fields or {})
        self.fields["consents"].key_field.validators = [validate.OneOf(channels)]  # type: ignore[attr-defined]

    @pre_load
    def _blank_to_none(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, Mapping):
            return {k: (None if isinstance(v, str) and not v.strip() else v) for k, v in data.items()}
        return data

    @validates_schema
    def _check_attributes(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "attributes" in data:
            errors = self.attribute_schema.validate(data["attributes"])
            if errors:
                raise ValidationError({"attributes": errors})

    @post_load
    def _normalize(self, data: dict[str, Any], *, partial: Any = None, **kwargs: Any) -> dict[str, Any]:
        if "attributes" in data:
            # Stored as JSON: plugin fields' dates and Decimals become ISO text / exact strings.
            data["attributes"] = to_jsonable(self.attribute_schema.load(data["attributes"]))
        for single, many in (("email", "emails"), ("phone", "phones")):
            if single in data:
                value = data.pop(single)
                rest = [v for v in data.get(many, []) if v != value]
                data[many] = ([value] if value else []) + rest
            elif many in data:
                data[many] = list(dict.fromkeys(data[many]))
        if "tags" in data:
            data["tags"] = sorted({t.strip() for t in data["tags"] if t.strip()})
        if "organizations" in data:  # one membership per organization: the first listing wins
            first: dict[int, dict[str, Any]] = {}
            for membership in data["organizations"]:
                first.setdefault(membership["organization_id"], membership)
            data["organizations"] = list(first.values())
        if data.get("country"):
            data["country"] = data["country"].upper()
        if "name" not in data and not partial and (data.get("given_name") or data.get("family_name")):
            data["name"] = self.compose_name(data.get("given_name"), data.get("family_name"))
        return data

    def compose_name(self, given_name: str | None, family_name: str | None) -> str:
        """The display name built from its parts when none is given.

        Vietnamese order is family, middle, given (Nguyễn Văn An); elsewhere given then family.
        """
        parts = [family_name, given_name] if self.default_country == "VN" else [given_name, family_name]
        return " ".join(p for p in parts if p)


def _attribute_schema(extra: Mapping[str, fields.Field]) -> Schema:
    """A schema for ``customer.attributes``: plugin-declared keys validated, other keys kept as given."""
    schema_class = Schema.from_dict(dict(extra), name="CustomerAttributesSchema")
    return schema_class(unknown=INCLUDE)


class InteractionSchema(CleanSchema):
    """An interaction as logged by a caller or imported."""

    MULTILINE = frozenset({"summary"})

    class Meta:
        unknown = RAISE

    customer_id = fields.Integer(required=True, strict=False, validate=validate.Range(1, MAX_ID))
    channel = fields.String(required=True)
    direction = fields.String(load_default="inbound", validate=validate.OneOf(DIRECTIONS))
    occurred_at = AwareDateTime(allow_none=True)
    subject = fields.String(allow_none=True, validate=validate.Length(max=300))
    summary = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True, validate=validate.Length(max=100))
    rating = fields.Integer(allow_none=True, validate=validate.Range(1, 5))
    employee = fields.String(allow_none=True, validate=validate.Length(max=100))
    sender = fields.String(allow_none=True, validate=validate.Length(max=320))

    def __init__(self, *args: Any, channels: tuple[str, ...] = CHANNELS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channel"].validators = [validate.OneOf(channels)]
