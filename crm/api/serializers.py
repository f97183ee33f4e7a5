"""Serializers the API areas share."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from django.utils.translation import gettext as _
from rest_framework import serializers

from crm.core.period import period_errors


class StrictInput:
    """For every serializer that reads a request body: a key that names no writable field (unknown,
    or read-only like a vehicle's `customer`) is refused with a 400 on that key, never dropped
    silently. Put it first among the bases: `class X(StrictInput, serializers.Serializer[Any])`.
    `written_elsewhere` names keys that another endpoint writes, with the message saying which."""

    written_elsewhere: dict[str, str] = {}

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            fields: Mapping[str, serializers.Field[Any, Any, Any, Any]] = self.fields  # type: ignore[attr-defined]
            writable = {name for name, field in fields.items() if not field.read_only}
            refused = sorted(str(key) for key in data if key not in writable and key != "csrfmiddlewaretoken")
            if refused:
                raise serializers.ValidationError(
                    {
                        key: [self.written_elsewhere.get(key) or _("This field cannot be written here.")]
                        for key in refused
                    }
                )
        return super().to_internal_value(data)  # type: ignore[misc]


class BlankChoices:
    """For model serializers: a read-only choice field whose model field may be blank keeps "" among
    its values, so the schema documents it (DRF drops allow_blank from read-only fields)."""

    def include_extra_kwargs(
        self, kwargs: MutableMapping[str, Any], extra_kwargs: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        blank = kwargs.get("allow_blank") and "choices" in kwargs
        kwargs = super().include_extra_kwargs(kwargs, extra_kwargs)  # type: ignore[misc]
        if blank and kwargs.get("read_only"):
            kwargs["allow_blank"] = True
        return kwargs


class DateRangeQuerySerializer(serializers.Serializer[Any]):
    """?start=&end= of a figures endpoint (dates in the dealership's zone, both included)."""

    start = serializers.DateField()
    end = serializers.DateField()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors = period_errors(attrs["start"], attrs["end"])
        if errors:
            raise serializers.ValidationError({name: [message] for name, message in errors.items()})
        return attrs
