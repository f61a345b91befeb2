"""Dotted version numbers ("1.4.2") compared as numbers, not as strings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Self

from .errors import InvalidCapabilities

_VERSION = re.compile(r"^\d{1,9}(\.\d{1,9}){0,5}$")


@dataclass(frozen=True, order=True)
class Version:
    """A dotted version; ``Version.parse("1.10") > Version.parse("1.9")``.

    Trailing zeros do not count: ``1.2 == 1.2.0``.
    """

    parts: tuple[int, ...]

    @classmethod
    def parse(cls, text: object, *, what: str = "version") -> Self:
        """Parse ``"1.2.3"`` (or an int) into a Version.

        Raises
        ------
        InvalidCapabilities
            If ``text`` is not one to six dot-separated non-negative integers.
        """
        if isinstance(text, cls):
            return text
        if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
            text = str(text)
        if not isinstance(text, str) or not _VERSION.match(text.strip()):
            raise InvalidCapabilities(
                f"{what} {text!r} is not a version; write dot-separated whole numbers like '1.2.0'"
            )
        parts = [int(p) for p in text.strip().split(".")]
        while len(parts) > 1 and parts[-1] == 0:
            parts.pop()
        return cls(tuple(parts))

    def __str__(self) -> str:
        return ".".join(str(p) for p in self.parts) + (".0" if len(self.parts) == 1 else "")
