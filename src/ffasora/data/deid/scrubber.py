"""The report scrubber: the three layers and the user's own patterns, joined into one pass; keyed pseudonyms.

Every layer reads the original text and returns spans; overlapping spans are joined and each is replaced by
``[CATEGORY]``. Running the layers side by side (not one after another on each other's output) means one
layer's placeholder never hides text from another, and each layer can be switched off to test it alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from ffasora.data.deid.context import context_spans
from ffasora.data.deid.detectors import detector_spans
from ffasora.data.deid.known import KnownIdentifiers
from ffasora.data.deid.spans import PLACEHOLDER, Span, replace, resolve

LAYERS = ("known", "detectors", "context", "patterns")


@dataclasses.dataclass(frozen=True)
class Scrubber:
    """The layers to run and the user's extra ``(LABEL, regex)`` patterns, compiled."""

    patterns: tuple[tuple[str, re.Pattern[str]], ...] = ()
    layers: tuple[str, ...] = LAYERS

    @classmethod
    def build(cls, extra: Sequence[tuple[str, str]] = (), layers: Sequence[str] = LAYERS) -> Scrubber:
        unknown = sorted(set(layers) - set(LAYERS))
        if unknown:
            raise ValueError(f"unknown scrub layer(s) {unknown}; expected some of {list(LAYERS)}")
        compiled = []
        for label, regex in extra:
            try:
                compiled.append((label.upper(), re.compile(regex)))
            except re.error as err:
                raise ValueError(f"scrub pattern {label} {regex!r} is not a valid regex ({err})") from err
        return cls(tuple(compiled), tuple(layers))

    def spans(self, text: str, known: KnownIdentifiers | Iterable[str] = ()) -> list[Span]:
        """The resolved spans every enabled layer finds in ``text`` (placeholders are never touched)."""
        if not isinstance(known, KnownIdentifiers):
            known = KnownIdentifiers.collect(ids=[k for k in known if k])
        spans: list[Span] = []
        if "known" in self.layers:
            spans += known.spans(text)
        if "detectors" in self.layers:
            spans += detector_spans(text)
        if "context" in self.layers:
            spans += context_spans(text)
        if "patterns" in self.layers:
            for label, pattern in self.patterns:
                spans += [
                    Span(m.start(), m.end(), label) for m in pattern.finditer(text) if m.end() > m.start()
                ]
        held = [m.span() for m in PLACEHOLDER.finditer(text)]
        spans = [s for s in spans if not any(a <= s.start and s.end <= b for a, b in held)]
        return resolve(spans)

    def scrub(self, text: str, known: KnownIdentifiers | Iterable[str] = ()) -> tuple[str, Counter[str]]:
        """Report text with identifiers replaced, and how many of each category were replaced.

        known: the record's known identifiers (``KnownIdentifiers``), or plain values such as its patient id.
        """
        spans = self.spans(text, known)
        return replace(text, spans), Counter(s.label for s in spans)


def load_patterns(path: str | Path) -> list[tuple[str, str]]:
    """Extra patterns from a text file: one ``LABEL regex`` per line; blank lines and ``#`` comments skipped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        line = text_line_of(path.read_bytes(), err.start)
        raise ValueError(f"{path}:{line}: not UTF-8 ({err.reason} at byte {err.start})") from err
    patterns = []
    for number, line_text in enumerate(text.splitlines(), 1):
        if not line_text.strip() or line_text.lstrip().startswith("#"):
            continue
        parts = line_text.strip().split(None, 1)
        if len(parts) != 2 or not re.fullmatch(r"[A-Za-z_]+", parts[0]):
            raise ValueError(f"{path}:{number}: expected 'LABEL regex', got {line_text!r}")
        try:
            Scrubber.build([(parts[0], parts[1])])  # fail now, naming the line, rather than in a worker
        except ValueError as err:
            raise ValueError(f"{path}:{number}: {err}") from err
        patterns.append((parts[0], parts[1]))
    return patterns


def text_line_of(data: bytes, offset: int) -> int:
    """The 1-based line number holding byte ``offset`` of ``data``."""
    return data.count(b"\n", 0, offset) + 1


def pseudonym(value: str, key: bytes, prefix: str, length: int = 12) -> str:
    """A stable pseudonym: keyed HMAC-SHA256 of ``value``, so it cannot be reversed without the key.

    A plain hash of a record number could be reversed by hashing every possible number; the key, kept apart
    from the dataset, prevents that while keeping ids stable across resumed runs.
    """
    digest = hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{prefix}{digest[:length]}"
