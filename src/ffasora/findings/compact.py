"""The canonical compact code form of a ``Findings`` (design reference §4.5), with an exact round trip.

Grammar (``|`` separates items, ``||`` starts the diagnoses)::

    EYE [|AR:<seconds>] {|CODE[(attr;attr;...)]} [|NO:CODE,CODE,...] [||DX:DX[(grade)]+DX[(grade)]...]

    OD|AR:12|MA(numerous;posterior_pole,temporal;early_AV;stable)|NPA(6DA;inferotemporal,mid_periphery)
      |NO:DISC_LEAK,NVD||DX:DR(PDR)+DME(cystoid)

Attributes are written in a fixed order (location, extent, onset, evolution, count, severity, certainty,
subtype) but are read back by vocabulary, because the ontology's value sets are disjoint: ``posterior_pole``
can only be a location, ``early_AV`` only a phase, ``6DA`` only an extent. Certainty is written only when it is
not the default ``definite``; negated codes are sorted, so equal ``Findings`` give equal strings.
"""

from __future__ import annotations

import re

from ffasora.findings.ontology import (
    CERTAINTIES,
    COUNT_BUCKETS,
    EVOLUTIONS,
    EXTENT_UNITS,
    FINDING_CODES,
    LOCATIONS,
    PHASES,
    SEVERITIES,
    Diagnosis,
    Extent,
    Finding,
    Findings,
)

_EXTENT = re.compile(r"^(\d+(?:\.\d+)?(?:e[-+]?\d+)?)(" + "|".join(EXTENT_UNITS) + r")$")
_FINDING = re.compile(r"^([A-Za-z_]+)(?:\((.*)\))?$")


def format_number(value: float) -> str:
    """Shortest text that reads back to exactly ``value`` (``6.0`` -> ``"6"``, ``2.5`` -> ``"2.5"``)."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _finding_to_compact(f: Finding) -> str:
    attrs: list[str] = []
    if f.location:
        attrs.append(",".join(f.location))
    if f.extent is not None:
        attrs.append(f"{format_number(f.extent.value)}{f.extent.unit}")
    attrs += [a for a in (f.onset_phase, f.evolution, f.count_bucket, f.severity) if a is not None]
    if f.certainty != "definite":
        attrs.append(f.certainty)
    if f.subtype is not None:
        attrs.append(f.subtype)
    return f"{f.code}({';'.join(attrs)})" if attrs else f.code


def to_compact(findings: Findings) -> str:
    """``Findings`` -> the canonical compact string (see the module docstring for the grammar)."""
    items = [findings.eye]
    if findings.arm_retina_s is not None:
        items.append(f"AR:{format_number(findings.arm_retina_s)}")
    items += [_finding_to_compact(f) for f in findings.present]
    if findings.absent:
        items.append("NO:" + ",".join(sorted(findings.absent)))
    text = "|".join(items)
    if findings.diagnoses:
        dx = [f"{d.code}({d.grade})" if d.grade else d.code for d in findings.diagnoses]
        text += "||DX:" + "+".join(dx)
    return text


def _finding_from_compact(item: str, source: str) -> Finding:
    m = _FINDING.match(item)
    if m is None or m.group(1) not in FINDING_CODES:
        raise ValueError(f"compact findings {source!r}: {item!r} is not CODE or CODE(attrs)")
    code, body = m.group(1), m.group(2)
    fields: dict[str, object] = {}
    for attr in body.split(";") if body else ():
        key, value = _classify(code, attr)
        if key is None or key in fields:
            raise ValueError(
                f"compact findings {source!r}: attribute {attr!r} of {code} is unknown or repeated"
            )
        fields[key] = value
    return Finding(code, **fields)  # type: ignore[arg-type]


def _classify(code: str, attr: str) -> tuple[str | None, object]:
    parts = attr.split(",")
    if all(p in LOCATIONS for p in parts):
        return "location", tuple(parts)
    m = _EXTENT.match(attr)
    if m:
        return "extent", Extent(float(m.group(1)), m.group(2))
    for key, vocab in (
        ("onset_phase", PHASES),
        ("evolution", EVOLUTIONS),
        ("count_bucket", COUNT_BUCKETS),
        ("severity", SEVERITIES),
        ("certainty", CERTAINTIES),
        ("subtype", FINDING_CODES[code].subtypes),
    ):
        if attr in vocab:
            return key, attr
    return None, None


def from_compact(text: str) -> Findings:
    """The compact string -> ``Findings``; ``from_compact(to_compact(f)) == f`` for every valid ``f``."""
    body, _, dx_part = text.strip().partition("||")
    items = body.split("|")
    eye, present, absent, arm = items[0], [], frozenset[str](), None
    for item in items[1:]:
        if item.startswith("AR:"):
            arm = float(item[3:])
        elif item.startswith("NO:"):
            absent = frozenset(c for c in item[3:].split(",") if c)
        elif item:
            present.append(_finding_from_compact(item, text))
    diagnoses = []
    if dx_part:
        if not dx_part.startswith("DX:"):
            raise ValueError(f"compact findings {text!r}: expected 'DX:' after '||', got {dx_part!r}")
        for item in dx_part[3:].split("+"):
            m = _FINDING.match(item)
            if m is None:
                raise ValueError(f"compact findings {text!r}: diagnosis {item!r} is not DX or DX(grade)")
            diagnoses.append(Diagnosis(m.group(1), m.group(2) or None))
    return Findings(eye, tuple(present), absent, tuple(diagnoses), arm)
