"""Final-answer extraction and checking for math word problems (GSM8K / GSM-Symbolic / MATH style).

A model's answer is looked for in this order: the last ``#### X`` line (GSM8K's convention, which the
default prompt asks for), the last ``\\boxed{X}`` (MATH), the last "answer is X", and finally the last
number in the text. Answers compare numerically when both sides parse as numbers, otherwise as
normalized strings.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

ANSWER_FORMATS = ("gsm8k", "boxed", "plain")

_NUMBER = r"-?\$?\s?\d[\d,]*(?:\.\d+)?|-?\$?\s?\.\d+"
_HASHES = re.compile(r"####\s*([^\n]+)")
_ANSWER_IS = re.compile(r"answer\s*(?:is|:)\s*:?\s*([^\n]+)", re.IGNORECASE)
_NUMBER_RE = re.compile(_NUMBER)
_FRACTION = re.compile(r"^(-?\d+)\s*/\s*(\d+)$")
_LATEX_FRAC = re.compile(r"^(-?)\\[dt]?frac\{(-?\d+)\}\{(\d+)\}$")


def _last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}``, with nested braces balanced."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j].strip()
    return None


def _first_number(text: str) -> str | None:
    match = _NUMBER_RE.search(text)
    return match.group(0) if match else None


def _clean(answer: str) -> str:
    answer = answer.strip().rstrip(".,").strip()
    for wrapper in ("\\text{", "\\mathrm{"):
        if answer.startswith(wrapper) and answer.endswith("}"):
            answer = answer[len(wrapper) : -1]
    answer = answer.replace("\\$", "$").replace("\\%", "%")
    answer = answer.replace("\\left", "").replace("\\right", "").replace("\\!", "").replace("$", "")
    return " ".join(answer.split())


def extract_answer(text: str) -> str | None:
    """The final answer a solution commits to, or None if it states none."""
    if not text:
        return None
    hashes = _HASHES.findall(text)
    if hashes:
        stated = _clean(hashes[-1])
        if to_number(stated) is not None:  # 42, 3/4, \frac{1}{2}
            return stated
        number = _first_number(hashes[-1])  # "42 apples"
        return _clean(number) if number is not None else stated
    boxed = _last_boxed(text)
    if boxed is not None:
        return _clean(boxed)
    stated = _ANSWER_IS.findall(text)
    if stated:
        number = _first_number(stated[-1])
        if number is not None:
            return _clean(number)
    numbers = _NUMBER_RE.findall(text)
    return _clean(numbers[-1]) if numbers else None


def gold_answer(raw: str, answer_format: str) -> str:
    """The reference answer of a dataset row: after ``####`` (gsm8k), inside ``\\boxed{}`` (boxed), or as is."""
    if answer_format not in ANSWER_FORMATS:
        raise ValueError(f"answer_format must be one of {ANSWER_FORMATS}, got {answer_format!r}")
    raw = str(raw)
    if answer_format == "gsm8k":
        hashes = _HASHES.findall(raw)
        if not hashes:
            raise ValueError(f"gsm8k-format answer has no '#### <answer>' line: {raw[-80:]!r}")
        return _clean(hashes[-1])
    if answer_format == "boxed":
        boxed = _last_boxed(raw)
        if boxed is None:
            raise ValueError(f"boxed-format answer has no \\boxed{{...}}: {raw[-80:]!r}")
        return _clean(boxed)
    return _clean(raw)


def is_worked_solution(text: str | None) -> bool:
    """Whether ``text`` shows reasoning, not only a final answer: a ``#### <answer>`` line alone (what
    answer-only datasets give) or a bare value is no worked solution, and must not become an SFT target."""
    if text is None or not str(text).strip():
        return False
    before_answer = _HASHES.split(str(text))[0] if _HASHES.search(str(text)) else str(text)
    words = before_answer.split()
    return len(words) >= 3 or (bool(_HASHES.search(str(text))) and len(words) >= 1)


def to_number(answer: str | None) -> Fraction | float | None:
    """A numeric value for ``1,234``, ``$5``, ``-0.5``, ``3/4``, ``\\frac{3}{4}``; None if not a number."""
    if answer is None:
        return None
    text = answer.replace(",", "").replace("$", "").replace(" ", "")
    if text.endswith("%"):
        text = text[:-1]
    fraction = _FRACTION.match(text)
    if fraction:
        denominator = int(fraction.group(2))
        return Fraction(int(fraction.group(1)), denominator) if denominator else None
    latex = _LATEX_FRAC.match(text)
    if latex:
        sign = -1 if latex.group(1) else 1
        denominator = int(latex.group(3))
        return sign * Fraction(int(latex.group(2)), denominator) if denominator else None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def answer_key(answer: str | None) -> str | None:
    """A canonical form for grouping answers: numbers by value, text case-folded."""
    if answer is None or (isinstance(answer, float) and math.isnan(answer)):
        return None
    number = to_number(answer)
    return repr(float(number)) if number is not None else _clean(str(answer)).lower()


def majority_key(keys: list[str | None]) -> str | None:
    """The most common non-null answer key; ties go to the one reached first. None if no sample answered."""
    counts: dict[str, int] = {}
    for key in keys:
        if key is not None:
            counts[key] = counts.get(key, 0) + 1
    if not counts:
        return None
    top = max(counts.values())
    return next(key for key in keys if key is not None and counts[key] == top)


def answers_match(predicted: str | None, gold: str) -> bool:
    """Numeric equality (relative tolerance 1e-6) when both parse as numbers, else exact normalized text."""
    if predicted is None:
        return False
    a, b = to_number(predicted), to_number(gold)
    if a is not None and b is not None:
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-9)
    return _clean(predicted).lower() == _clean(gold).lower()
