"""Free English or Chinese FFA report text -> ``Findings``: a lexicon-and-rules parser (design reference §4.5).

How a report is read:

1. The impression ("Impression:", "诊断：", ...) is split off; diagnoses come from it (or from the whole text
   when there is none), findings only from the body, so "cystoid diabetic macular oedema" in the impression
   does not become a CME sign.
2. Sign names are matched leftmost-longest (``lexicon.py``) and masked, then extents ("6 DA", "2.5PD") are
   matched and masked, so "disc" in "6 disc areas" or "无" in "无灌注区" cannot be read again as a location or
   a negation.
3. The body is cut into clauses at ``. ; 。 ；``. Attribute words in a clause (locations, counts, severity,
   hedges, evolution) go to the nearest sign in that clause; the subtype is looked up by the sign's own words.
4. Onset phase: a phase named in the sign's own clause, else the last phase named before it ("Late phase: A.
   B." gives B the late phase too), reset by "In addition" / "另见".
5. Negation: a cue ("no", "without", "未见", "无", ...) before a sign in its clause denies it unless a
   contrast ("but", "但") or a new positive statement (", with ...", "，可见...") comes between; "X is absent",
   "X not seen", "X阴性" deny X from behind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ffasora.findings import lexicon as L
from ffasora.findings.ontology import SEVERITIES, Diagnosis, Extent, Finding, Findings
from ffasora.findings.writer import write_report

_FINDINGS = L.Matcher(L.FINDING_PATTERNS)
_LOCATIONS = L.Matcher(L.LOCATION_PATTERNS)
_PHASES = L.Matcher(L.PHASE_PATTERNS)
_COUNTS = L.Matcher(L.COUNT_PATTERNS)
_SEVERITY = L.Matcher(L.SEVERITY_PATTERNS)
_HEDGES = L.Matcher(L.HEDGE_PATTERNS)
_EVOLUTION = L.Matcher(L.EVOLUTION_PATTERNS)
_NEGATION = L.Matcher(L.NEGATION_PATTERNS)
_RESET = L.Matcher(L.RESET_PATTERNS)
_EYES = L.Matcher(L.EYE_PATTERNS)
_DIAGNOSES = L.Matcher(L.DIAGNOSIS_PATTERNS)
_GRADES = {code: L.Matcher(table) for code, table in L.GRADE_PATTERNS.items()}
_SUBTYPES = {
    "HEME_BLOCK": L.Matcher(
        {
            "dot": [r"dot", r"点状"],
            "blot": [r"blot", r"斑片状", r"片状"],
            "flame": [r"flame(-shaped)?", r"火焰状"],
            "preretinal": [r"pre-?retinal", r"vitreous", r"视网膜前", r"玻璃体"],
            "subretinal": [r"sub-?retinal", r"视网膜下"],
        }
    ),
    "CSC_LEAK": L.Matcher(
        {"ink_blot": [r"ink-?blot", r"墨渍样", r"墨迹样"], "smokestack": [r"smoke-?stack", r"炊烟", r"烟囱"]}
    ),
    "CNV_OCCULT": L.Matcher(
        {
            "fibrovascular_PED": [r"fibrovascular", r"纤维血管性"],
            "late_leakage": [r"(undetermined|unknown) source", r"来源不明"],
        }
    ),
    "LASER_SCARS": L.Matcher(
        {
            "PRP": [r"=PRP", r"panretinal", r"全视网膜"],
            "grid": [r"grid", r"格栅"],
            "focal": [r"focal", r"局灶", r"局部"],
        }
    ),
}
_CLAUSE_END = re.compile(r"[。；;！？!?\n]|(?<!approx)(?<!e\.g)(?<!i\.e)(?<!\bvs)\.(?!\d)")
_SUBCLAUSE_END = re.compile(r"[,，:：]")
_PRE_MODIFIERS = ("count", "severity", "hedge")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def detect_language(text: str) -> str:
    """``"zh"`` when a tenth or more of the letters are CJK characters, else ``"en"``."""
    letters = sum(ch.isalpha() for ch in text)
    return "zh" if letters and len(_CJK.findall(text)) >= 0.1 * letters else "en"


@dataclass
class _Mention:
    """One sign named in one clause, and what the clause says about it."""

    code: str
    start: int
    end: int
    clause: int
    negated: bool = False
    group: tuple[str, ...] = ()
    attrs: dict[str, list[object]] = field(default_factory=dict)

    def add(self, key: str, value: object) -> None:
        self.attrs.setdefault(key, []).append(value)

    def first(self, key: str) -> object:
        values = self.attrs.get(key)
        return values[0] if values else None


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    chars = list(text)
    for a, b in spans:
        chars[a:b] = "\x00" * (b - a)
    return "".join(chars)


def _clauses(text: str) -> list[int]:
    """Clause boundaries: sorted end offsets (the last is ``len(text)``)."""
    return [m.start() for m in _CLAUSE_END.finditer(text)] + [len(text)]


def _clause_of(pos: int, bounds: list[int]) -> int:
    lo, hi = 0, len(bounds) - 1
    while lo < hi:  # first boundary at or after pos
        mid = (lo + hi) // 2
        if bounds[mid] < pos:
            lo = mid + 1
        else:
            hi = mid
    return lo


def parse_report(text: str) -> Findings:
    """Parse one eye's report (English or Chinese, detected) into codes, attributes, negatives, diagnoses."""
    if not isinstance(text, str):
        raise ValueError(f"parse_report: expected report text (str), got {type(text).__name__}")
    head = L.IMPRESSION.search(text)
    body = text[: head.start()] if head else text
    names = _FINDINGS.find(body)
    # without an impression, diagnoses are read from the body minus sign names ("未见明显异常荧光" is a sign)
    impression = (
        text[head.end() :] if head else _mask(body, [(m.start, m.end) for m in names if m.label != "NULL"])
    )
    mentions = _read_body(body, names, detect_language(body))
    present, absent = _collect(mentions)
    return Findings(
        eye=_eye(text),
        present=present,
        absent=frozenset(absent),
        diagnoses=_diagnoses(impression),
        arm_retina_s=_arm_retina(text),
    )


def to_canonical_english(text: str, seed: int = 0) -> str:
    """Any report (e.g. Chinese) -> the canonical English report of the same findings (for English text encoders)."""
    return write_report(parse_report(text), lang="en", seed=seed)


def _eye(text: str) -> str:
    for m in _EYES.find(text):
        return "OS" if m.label == "OS" else "OD"
    return "OD"


def _arm_retina(text: str) -> float | None:
    m = L.ARM_RETINA.search(text)
    return float(m.group(1)) if m else None


def _read_body(body: str, names: list[L.Match], lang: str) -> list[_Mention]:
    masked = _mask(body, [(m.start, m.end) for m in names])
    extents = [
        (m.start(), m.end(), Extent(float(m.group(1)), unit))
        for unit, rx in L.EXTENT_PATTERNS.items()
        for m in rx.finditer(masked)
    ]
    arm = [(m.start(), m.end()) for m in L.ARM_RETINA.finditer(masked)]
    masked = _mask(masked, [(a, b) for a, b, _ in extents] + arm)
    bounds = _clauses(body)
    sub_bounds = sorted(set(bounds) | {m.start() for m in _SUBCLAUSE_END.finditer(body)})
    locations = _LOCATIONS.find(masked)
    cues = _NEGATION.find(masked)
    mentions = _resolve(names, locations, cues, bounds, sub_bounds)
    _negate(mentions, cues, masked, bounds)
    by_clause: dict[int, list[_Mention]] = {}
    for mention in mentions:
        by_clause.setdefault(mention.clause, []).append(mention)
    attribute_spans: list[tuple[int, int, str, object]] = [
        (m.start, m.end, "location", m.label) for m in locations
    ]
    attribute_spans += [(a, b, "extent", e) for a, b, e in extents]
    for key, matcher in (
        ("count", _COUNTS),
        ("severity", _SEVERITY),
        ("hedge", _HEDGES),
        ("evolution", _EVOLUTION),
    ):
        attribute_spans += [(m.start, m.end, key, m.label) for m in matcher.find(masked)]
    for a, b, key, value in sorted(attribute_spans, key=lambda s: s[0]):
        near = by_clause.get(_clause_of(a, bounds))
        if near:
            _owner(near, a, b, key, lang, sub_bounds).add(key, value)
    _onsets(mentions, _PHASES.find(masked), _RESET.find(masked), masked, bounds, sub_bounds)
    for mention in mentions:
        subtypes = _SUBTYPES.get(mention.code)
        if subtypes:
            clause = _clause_of(mention.start, bounds)
            lo = bounds[clause - 1] if clause else 0
            found = subtypes.find(body[lo : bounds[clause]])
            if found:
                mention.add("subtype", found[0].label)
    return mentions


def _owner(near: list[_Mention], a: int, b: int, key: str, lang: str, sub_bounds: list[int]) -> _Mention:
    """The sign an attribute word at [a, b) belongs to: same comma-delimited part first, then the side the
    language puts that attribute on (counts and hedges before the noun; English locations after it,
    Chinese ones before it), then the nearest."""
    part = _clause_of(a, sub_bounds)
    pool = [m for m in near if _clause_of(m.start, sub_bounds) == part] or near
    before_noun = key in _PRE_MODIFIERS or (lang == "zh" and key == "location")
    side = [m for m in pool if (m.start >= b if before_noun else m.end <= a)]
    return min(side or pool, key=lambda m: max(m.start - b, a - m.end, 0))


def _resolve(
    names: list[L.Match],
    locations: list[L.Match],
    cues: list[L.Match],
    bounds: list[int],
    sub_bounds: list[int],
) -> list[_Mention]:
    """Name matches -> mentions: drop NULL; bare "leakage" becomes a code only where nothing specific is named
    in its clause ("leaking progressively" describes the sign before it), or where it is denied in a part of
    the clause of its own ("视盘未见渗漏，黄斑区见局灶性渗漏")."""
    specific = [m for m in names if m.label not in ("NULL", "WEAK_LEAK")]
    clauses = {_clause_of(m.start, bounds) for m in specific}
    parts = {_clause_of(m.start, sub_bounds) for m in specific}
    disc_parts = {_clause_of(m.start, sub_bounds) for m in locations if m.label in ("disc", "peripapillary")}
    cue_parts = {_clause_of(c.start, sub_bounds): c.start for c in cues}
    out: list[_Mention] = []
    for m in names:
        clause, part = _clause_of(m.start, bounds), _clause_of(m.start, sub_bounds)
        label = m.label
        if label == "WEAK_LEAK":
            denied_alone = part not in parts and cue_parts.get(part, m.start) < m.start
            if clause in clauses and not denied_alone:
                continue
            label = "DISC_LEAK" if part in disc_parts else "GROUP:LEAK_FOCAL,LEAK_DIFFUSE"
        if label == "NULL":
            continue
        if label.startswith("GROUP:"):
            group = tuple(label[6:].split(","))
            out.append(_Mention(group[0], m.start, m.end, clause, group=group))
        else:
            out.append(_Mention(label, m.start, m.end, clause))
    return out


def _negate(mentions: list[_Mention], cues: list[L.Match], masked: str, bounds: list[int]) -> None:
    for mention in mentions:
        for cue in cues:
            same_clause = cue.end <= mention.start and _clause_of(cue.start, bounds) == mention.clause
            if same_clause and not L.SCOPE_BREAK.search(masked, cue.end, mention.start):
                mention.negated = True
        if L.POST_NEGATION.match(masked[mention.end : bounds[mention.clause]]):
            mention.negated = True


def _onsets(
    mentions: list[_Mention],
    phases: list[L.Match],
    resets: list[L.Match],
    masked: str,
    bounds: list[int],
    sub_bounds: list[int],
) -> None:
    """Onset phase of each sign: a phase named in its comma-delimited part, else before it in its clause, else
    after it in its clause ("CME in the late phase"), else the last phase heading a clause before it
    ("Late phase: A. B."), unless "In addition" / "另见" came in between."""
    events: list[tuple[int, str | None]] = [(m.start, None) for m in resets]
    for m in phases:
        clause = _clause_of(m.start, bounds)
        lo = bounds[clause - 1] + 1 if clause else 0
        if L.HEADING_LEAD.match(masked[lo : m.start]):
            events.append((m.start, m.label))
    events.sort(key=lambda e: e[0])
    for mention in mentions:
        own = [m for m in phases if _clause_of(m.start, bounds) == mention.clause]
        part = [m for m in own if _clause_of(m.start, sub_bounds) == _clause_of(mention.start, sub_bounds)]
        before = [m for m in own if m.end <= mention.start]
        if own:
            pool = part or before or own
            nearest = min(pool, key=lambda m: max(m.start - mention.end, mention.start - m.end, 0))
            mention.add("onset", nearest.label)
            continue
        earlier = [label for pos, label in events if pos < mention.start]
        if earlier and earlier[-1] is not None:
            mention.add("onset", earlier[-1])


def _finding(code: str, mentions: list[_Mention]) -> Finding:
    if code == "NORMAL":
        return Finding("NORMAL")  # a normal angiogram has no location, onset or extent
    values: dict[str, list[object]] = {}
    for m in mentions:
        for key, vals in m.attrs.items():
            values.setdefault(key, []).extend(vals)
    location = tuple(dict.fromkeys(str(v) for v in values.get("location", [])))
    evolutions = [str(v) for v in values.get("evolution", [])]
    severity = next((str(v) for v in values.get("severity", []) if v in SEVERITIES), None)
    return Finding(
        code,
        location=location,
        onset_phase=next((str(v) for v in values.get("onset", [])), None),
        evolution="tracks_background"
        if "tracks_background" in evolutions
        else (evolutions[0] if evolutions else None),
        extent=next((v for v in values.get("extent", []) if isinstance(v, Extent)), None),
        count_bucket=next((str(v) for v in values.get("count", [])), None),
        severity=severity,
        certainty="suspected" if values.get("hedge") else "definite",
        subtype=next((str(v) for v in values.get("subtype", [])), None),
    )


def _collect(mentions: list[_Mention]) -> tuple[tuple[Finding, ...], set[str]]:
    """Merge mentions per code: present in order of first mention; a code stated anywhere present is not absent."""
    present: dict[str, list[_Mention]] = {}
    absent: set[str] = set()
    for m in mentions:
        if m.negated:
            absent.update(m.group or (m.code,))
        else:
            present.setdefault(m.code, []).append(m)
    return tuple(_finding(code, ms) for code, ms in present.items()), absent - set(present)


def _diagnoses(text: str) -> tuple[Diagnosis, ...]:
    mentions = _DIAGNOSES.find(text)
    grades: dict[str, str | None] = {}
    for i, m in enumerate(mentions):
        lo = mentions[i - 1].end if i else 0
        hi = mentions[i + 1].start if i + 1 < len(mentions) else len(text)
        grade = None
        if m.label in _GRADES:
            found = _GRADES[m.label].find(text[lo:hi])
            a, b = m.start - lo, m.end - lo
            if found:
                grade = min(found, key=lambda g: max(g.start - b, a - g.end, 0)).label
        if m.label not in grades or grades[m.label] is None:
            grades[m.label] = grade
    return tuple(Diagnosis(code, grade) for code, grade in grades.items())
