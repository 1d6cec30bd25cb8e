"""Questions, parts and gaps named as the exam shows them to people — "Question 2: Bézout's
identity, part a, gap 1" — instead of the ids the exam stores ("q1p0g0").

Numbas numbers questions in the order the student sees them (q0 is the first shown), letters
parts (a, b, c) and numbers gaps and steps from 1. A question's name comes from what the exam
stored for the attempt (`cmi.objectives.N.description`, right even when questions are shuffled
or picked at random), else from the exam's structure (exams.packages) for the questions every
attempt numbers the same way."""

from __future__ import annotations

import re
from collections.abc import Mapping

from django.utils.translation import gettext

_ITEM = re.compile(r"^q(\d+)(?:p(\d+)((?:[gs]\d+)*))?$")
_SUB = re.compile(r"([gs])(\d+)")
_OBJECTIVE = re.compile(r"^cmi\.objectives\.(\d+)\.(id|description)$")


def _letter(index: int) -> str:
    return chr(97 + index) if index < 26 else str(index + 1)


def question_names_from(values: Mapping[str, str]) -> dict[str, str]:
    """{"q0": name} from what the exam stored for an attempt."""
    found: dict[int, dict[str, str]] = {}
    for key, value in values.items():
        if key.startswith("cmi.objectives."):
            match = _OBJECTIVE.match(key)
            if match:
                found.setdefault(int(match[1]), {})[match[2]] = value
    return {o["id"]: o["description"].strip() for o in found.values() if o.get("id") and o.get("description", "").strip()}


def _fixed_names(structure) -> dict[str, str]:
    names = {}
    for index, question in enumerate(structure or []):
        if not isinstance(question, dict) or question.get("picking", "all-ordered") != "all-ordered":
            break
        if str(question.get("name") or "").strip():
            names[f"q{index}"] = str(question["name"]).strip()
    return names


class ItemNames:
    """Names for the ids of one exam (and one attempt's values, when given)."""

    def __init__(self, structure=None, values: Mapping[str, str] | None = None):
        self._names = {**_fixed_names(structure), **question_names_from(values or {})}

    def question(self, qid: str) -> str:
        """"Question 2: Bézout's identity" (or "Question 2" when the name is not known)."""
        match = _ITEM.match(qid)
        if not match:
            return qid
        number = int(match[1]) + 1
        name = self._names.get(f"q{match[1]}")
        if name:
            return gettext("Question %(number)d: %(name)s") % {"number": number, "name": name}
        return gettext("Question %(number)d") % {"number": number}

    def part(self, item_id: str) -> str:
        """The part within its question: "part a", "part a, gap 1", "part b, step 2"; "" for a question."""
        match = _ITEM.match(item_id)
        if not match or match[2] is None:
            return ""
        label = gettext("part %(letter)s") % {"letter": _letter(int(match[2]))}
        for kind, index in _SUB.findall(match[3] or ""):
            if kind == "g":
                label = gettext("%(part)s, gap %(number)d") % {"part": label, "number": int(index) + 1}
            else:
                label = gettext("%(part)s, step %(number)d") % {"part": label, "number": int(index) + 1}
        return label

    def label(self, item_id: str) -> str:
        """The whole name: "Question 2: Bézout's identity, part a, gap 1"; the id itself when it
        is not a question, part or gap."""
        if not _ITEM.match(item_id):
            return item_id
        part = self.part(item_id)
        question = self.question(item_id.split("p", 1)[0])
        return gettext("%(question)s, %(part)s") % {"question": question, "part": part} if part else question
