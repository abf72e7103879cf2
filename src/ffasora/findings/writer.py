"""Findings -> a realistic FFA report in English or Chinese (design reference §4.1-4.3).

The report follows the clinical order: eye and arm-to-retina time, then one paragraph per angiographic phase
in which a sign first appears (choroidal -> arterial -> early/late AV -> venous -> mid -> late), signs with no
stated onset under "In addition" / "另见", an explicit negatives sentence, and the impression / 诊断 line.
Each sign is one clause; paraphrases, clause order within a phase and sentence breaks are drawn from a
``random.Random(seed)``, so a seed fixes the text and different seeds vary it.

The parser (``parser.py``) reads every report written here back to the same codes and key attributes; the
round-trip tests over random findings pin that contract.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

from ffasora.findings import phrases as P
from ffasora.findings.compact import format_number
from ffasora.findings.ontology import PHASES, SECTORS, ZONES, Diagnosis, Finding, Findings

LANGS = ("en", "zh")
T = TypeVar("T")


def write_report(findings: Findings, lang: str = "en", seed: int = 0) -> str:
    """Write the report of one eye; ``lang`` is ``"en"`` or ``"zh"``; equal seeds give equal text."""
    if lang not in LANGS:
        raise ValueError(f"write_report: lang {lang!r} is not one of {LANGS}")
    rng = random.Random(seed)
    writer = _English(rng) if lang == "en" else _Chinese(rng)
    return writer.report(findings)


def _sections(findings: Findings) -> list[tuple[str | None, list[Finding]]]:
    """The signs grouped by onset phase in angiographic order, signs without an onset last."""
    groups: list[tuple[str | None, list[Finding]]] = []
    for phase in (*PHASES, None):
        members = [f for f in findings.present if f.onset_phase == phase and f.code != "NORMAL"]
        if members:
            groups.append((phase, members))
    return groups


class _Writer:
    """What both languages share: the report skeleton and the random choices."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pick(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]

    def report(self, findings: Findings) -> str:
        normal = "NORMAL" in findings.codes()
        parts = [self.header(findings)]
        if normal and not _sections(findings):
            parts.append(self.normal_body())
        for phase, members in _sections(findings):
            clauses = [self.clause(f) for f in members]
            self.rng.shuffle(clauses)
            parts.append(self.section(phase, clauses))
        if findings.absent:
            codes = sorted(findings.absent)
            self.rng.shuffle(codes)
            parts.append(self.negatives(codes))
        if findings.diagnoses:
            parts.append(self.impression(findings.eye, list(findings.diagnoses)))
        return self.pick(("\n", " ")).join(p for p in parts if p)

    def header(self, findings: Findings) -> str:
        raise NotImplementedError

    def normal_body(self) -> str:
        raise NotImplementedError

    def clause(self, f: Finding) -> str:
        raise NotImplementedError

    def section(self, phase: str | None, clauses: list[str]) -> str:
        raise NotImplementedError

    def negatives(self, codes: list[str]) -> str:
        raise NotImplementedError

    def impression(self, eye: str, diagnoses: list[Diagnosis]) -> str:
        raise NotImplementedError

    def diagnosis(self, d: Diagnosis, table: dict[str, dict[str | None, list[str]]]) -> str:
        return self.pick(table[d.code][d.grade])


def _join(items: list[str], sep: str, last: str) -> str:
    return items[0] if len(items) == 1 else sep.join(items[:-1]) + last + items[-1]


def _split_location(location: tuple[str, ...]) -> tuple[list[str], list[str]]:
    return [x for x in location if x in SECTORS], [x for x in location if x in ZONES]


class _English(_Writer):
    def header(self, findings: Findings) -> str:
        eye = self.pick(P.EYE_EN[findings.eye])
        if findings.arm_retina_s is None:
            return f"{eye}:"
        timing = self.pick(P.TIMING_EN).format(v=format_number(findings.arm_retina_s))
        return f"{eye}: {timing}."

    def normal_body(self) -> str:
        return self.pick(P.NORMAL_EN)

    def section(self, phase: str | None, clauses: list[str]) -> str:
        head = self.pick(P.PHASE_EN[phase] if phase else P.ADDITIONAL_EN)
        head += ", " if head.split()[0] in ("In", "During", "Additionally", "Elsewhere") else ": "
        text = head + clauses[0]
        for c in clauses[1:]:
            text += "; " + c if self.rng.random() < 0.6 else ". " + c[0].upper() + c[1:]
        return text[0].upper() + text[1:] + "."

    def noun_phrase(self, f: Finding) -> tuple[str, bool]:
        singular, plural = self.pick(P.NAMES_EN[f.code])
        is_plural = f.count_bucket != "single" and singular != plural
        name = plural if is_plural else singular
        sub = self.pick(P.SUBTYPES_EN[f.code][f.subtype]) if f.subtype else ""
        name = name.replace("{sub}", sub)
        words = []
        if f.count_bucket:
            words.append(self.pick(P.COUNT_EN[f.count_bucket]))
        if f.certainty == "suspected":
            words.append(self.pick(P.HEDGE_EN))
        if f.severity:
            words.append(self.pick(P.SEVERITY_EN[f.severity]))
        return " ".join([*words, name]), is_plural

    def location(self, location: tuple[str, ...]) -> str:
        sectors, zones = _split_location(location)
        sector = _join([self.pick(P.SECTOR_EN[s]) for s in sectors], ", ", " and ") if sectors else ""
        zone = _join([self.pick(P.ZONE_EN[z]) for z in zones], ", ", " and the ") if zones else ""
        if not zone:
            zone = "quadrant" + ("s" if len(sectors) > 1 else "") if self.rng.random() < 0.5 else "retina"
        prep = self.pick(("in the", "at the", "involving the", "over the"))
        return f"{prep} {sector} {zone}".replace("  ", " ")

    def clause(self, f: Finding) -> str:
        np, plural = self.noun_phrase(f)
        be = "are" if plural else "is"
        loc = self.location(f.location) if f.location else ""
        ext = (
            " " + self.pick(P.EXTENT_EN[f.extent.unit]).format(v=format_number(f.extent.value))
            if f.extent
            else ""
        )
        evo = ", " + self.pick(P.EVOLUTION_EN[f.evolution]) if f.evolution else ""
        form = self.rng.randrange(5 if loc else 3)
        tail = f"{ext}{evo}"
        if form == 0:
            return f"{np} {loc}{tail}".replace("  ", " ").strip()
        if form == 1:
            return f"{np} {be} seen {loc}{tail}".replace("  ", " ").strip()
        if form == 2:
            return f"there {be} {np} {loc}{tail}".replace("  ", " ").strip()
        if form == 3:
            return f"{np} {be} noted {loc}{tail}"
        return f"{loc}, {np}{tail}"

    def negatives(self, codes: list[str]) -> str:
        names = []
        for code in codes:
            if code in P.NEGATIVE_EN:
                names.append(self.pick(P.NEGATIVE_EN[code]))
            else:
                singular, plural = self.pick(P.NAMES_EN[code])
                names.append(plural.replace("{sub}", ""))
        text = _join(names, ", ", self.pick((" or ", ", or ")))
        return self.pick(P.NEGATION_EN).format(x=text)

    def impression(self, eye: str, diagnoses: list[Diagnosis]) -> str:
        names = [self.diagnosis(d, P.DIAGNOSIS_EN) for d in diagnoses]
        dx = _join(names, "; ", self.pick((" with ", "; ", " and ")))
        return self.pick(P.IMPRESSION_EN).format(eye=self.pick(P.IMPRESSION_EYE_EN[eye]), dx=dx)


class _Chinese(_Writer):
    def header(self, findings: Findings) -> str:
        eye = self.pick(P.EYE_ZH[findings.eye])
        if findings.arm_retina_s is None:
            return f"{eye}："
        timing = self.pick(P.TIMING_ZH).format(v=format_number(findings.arm_retina_s))
        return f"{eye}：{timing}。"

    def normal_body(self) -> str:
        return self.pick(P.NORMAL_ZH)

    def section(self, phase: str | None, clauses: list[str]) -> str:
        head = self.pick(P.PHASE_ZH[phase]) + "：" if phase else self.pick(P.ADDITIONAL_ZH)
        text = head + clauses[0]
        for c in clauses[1:]:
            text += ("；" if self.rng.random() < 0.6 else "。") + c
        return text + "。"

    def noun_phrase(self, f: Finding) -> str:
        name = self.pick(P.NAMES_ZH[f.code])
        sub = self.pick(P.SUBTYPES_ZH[f.code][f.subtype]) if f.subtype else ""
        name = name.replace("{sub}", sub)
        words = []
        if f.count_bucket:
            words.append(self.pick(P.COUNT_ZH[f.count_bucket]))
        if f.certainty == "suspected":
            words.append(self.pick(P.HEDGE_ZH))
        if f.severity:
            words.append(self.pick(P.SEVERITY_ZH[f.severity]))
        return "".join([*words, name])

    def location(self, location: tuple[str, ...]) -> str:
        sectors, zones = _split_location(location)
        sector = "、".join(self.pick(P.SECTOR_ZH[s]) for s in sectors)
        zone = _join([self.pick(P.ZONE_ZH[z]) for z in zones], "、", "及") if zones else ""
        return sector + zone

    def clause(self, f: Finding) -> str:
        np = self.noun_phrase(f)
        loc = self.location(f.location) if f.location else ""
        ext = (
            self.pick(P.EXTENT_ZH[f.extent.unit]).format(v=format_number(f.extent.value)) if f.extent else ""
        )
        evo = "，" + self.pick(P.EVOLUTION_ZH[f.evolution]) if f.evolution else ""
        if not loc:
            return self.pick(("可见", "见", "")) + f"{np}{ext}{evo}"
        form = self.rng.randrange(4)
        if form == 0:
            return f"{loc}可见{np}{ext}{evo}"
        if form == 1:
            return f"{loc}见{np}{ext}{evo}"
        if form == 2:
            return f"{np}{ext}，位于{loc}{evo}"
        return f"{np}{ext}，以{loc}为主{evo}"

    def negatives(self, codes: list[str]) -> str:
        names = [self.pick(P.NEGATIVE_ZH.get(c) or P.NAMES_ZH[c]).replace("{sub}", "") for c in codes]
        text = _join(names, "、", self.pick(("及", "或", "、")))
        return self.pick(P.NEGATION_ZH).format(x=text)

    def impression(self, eye: str, diagnoses: list[Diagnosis]) -> str:
        names = [self.diagnosis(d, P.DIAGNOSIS_ZH) for d in diagnoses]
        dx = _join(names, "，", self.pick(("，", "伴", "；")))
        return self.pick(P.IMPRESSION_ZH).format(eye=self.pick(P.IMPRESSION_EYE_ZH[eye]), dx=dx)
