"""The API's JSON parser: DRF's, with a body nested too deep for Python's parser refused as a 400.

`json.loads` recurses once per nesting level, so `[[[[…]]]]` a hundred thousand deep raises
RecursionError (a 500). No real document of this API nests deeper than a handful of levels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class DepthSafeJSONParser(JSONParser):
    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
