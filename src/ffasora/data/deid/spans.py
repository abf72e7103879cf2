"""What every de-identification layer returns: spans of the text to replace, each with its category."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import NamedTuple

# The categories a span may carry; each becomes ``[CATEGORY]`` in the scrubbed text.
CATEGORIES = (
    "NAME",
    "ID",
    "NATIONAL_ID",
    "DATE",
    "PHONE",
    "EMAIL",
    "URL",
    "IP",
    "ADDRESS",
    "AGE",
    "VEHICLE",
)

# The placeholders the scrubber writes; later passes (and the audit) leave them alone.
PLACEHOLDER = re.compile(r"\[[A-Z_]+\]")


class Span(NamedTuple):
    start: int
    end: int
    label: str


def regex_spans(
    pattern: re.Pattern[str],
    text: str,
    label: str,
    group: int | str = 0,
    keep: Callable[[re.Match[str]], bool] | None = None,
) -> list[Span]:
    """One span per match of ``pattern`` (of its ``group``), kept only where ``keep(match)`` is true."""
    spans = []
    for match in pattern.finditer(text):
        start, end = match.span(group)
        if start < end and (keep is None or keep(match)):
            spans.append(Span(start, end, label))
    return spans


def resolve(spans: Iterable[Span]) -> list[Span]:
    """Non-overlapping spans: overlapping ones are joined into one, labelled by the longest of them."""
    joined: list[Span] = []
    longest: list[int] = []
    for span in sorted(spans, key=lambda s: (s.start, -(s.end - s.start))):
        if joined and span.start < joined[-1].end:
            last = joined[-1]
            label = span.label if span.end - span.start > longest[-1] else last.label
            longest[-1] = max(longest[-1], span.end - span.start)
            joined[-1] = Span(last.start, max(last.end, span.end), label)
        else:
            joined.append(span)
            longest.append(span.end - span.start)
    return joined


def replace(text: str, spans: Iterable[Span]) -> str:
    """``text`` with each (non-overlapping) span replaced by ``[LABEL]``."""
    out, cursor = [], 0
    for span in sorted(spans):
        out.append(text[cursor : span.start])
        out.append(f"[{span.label}]")
        cursor = span.end
    out.append(text[cursor:])
    return "".join(out)
