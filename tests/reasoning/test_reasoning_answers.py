"""Final-answer extraction and comparison for the generative reasoning track (w2s.reasoning.answers)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from w2s.reasoning.answers import answer_key, answers_match, extract_answer, gold_answer, majority_key, to_number

# --------------------------------------------------------------------------- extract_answer


@pytest.mark.parametrize(
    "text, expected",
    [
        # GSM8K's "#### X" line: commas kept, dollar signs dropped, the last such line wins.
        ("She has 3 + 4 = 7 apples.\n#### 7", "7"),
        ("The total is 1,000 + 234.\n#### 1,234", "1,234"),
        ("It costs $1,234.50 in all.\n#### $1,234.50", "1,234.50"),
        ("#### -7", "-7"),
        ("#### 12\nWait, I made a mistake.\n#### 15", "15"),
        ("#### 7.", "7"),
        ("#### 42 apples", "42"),
        ("#### twelve", "twelve"),  # no number on the line: the line itself
        # "####" wins over \boxed and "the answer is".
        ("The answer is 3. \\boxed{4}\n#### 5", "5"),
    ],
)
def test_extract_answer_from_hash_line(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("So x = \\boxed{3}.", "3"),
        ("First \\boxed{3}, then correcting: \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{x^{2}+1}", "x^{2}+1"),
        ("\\boxed{ \\text{Tuesday} }", "Tuesday"),
        # \boxed wins over "the answer is".
        ("\\boxed{\\frac{1}{2}} and the answer is 3", "\\frac{1}{2}"),
    ],
)
def test_extract_answer_from_last_boxed(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("raw, predicted", [("The total is \\boxed{\\$18.90}.", "18.90"), ("\\boxed{10\\%}", "10")])
def test_boxed_gold_with_escaped_dollar_or_percent_matches_the_plain_number(raw, predicted):
    assert answers_match(predicted, gold_answer(raw, "boxed"))


def test_extract_answer_unbalanced_boxed_falls_through_to_the_last_number():
    assert extract_answer("3 apples, then \\boxed{17") == "17"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The answer is 42.", "42"),
        ("the answer is: 1,000.", "1,000"),
        ("Answer: $5", "5"),
        ("The answer is 12 apples. Earlier I had 99.", "12"),
        # "answer is" with no number on its line: the last number of the whole text.
        ("The answer is forty-two.\nI computed 6 * 7 = 42, then 43", "43"),
    ],
)
def test_extract_answer_from_answer_is(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("I have 3 apples and 4 pears, so 7 fruits", "7"),
        ("The temperature drops to -5 degrees", "-5"),
        ("It costs $12.50 in total", "12.50"),
        ("He has 1,000,000 dollars", "1,000,000"),
        ("I have .5 left", ".5"),
    ],
)
def test_extract_answer_falls_back_to_the_last_number(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("text", ["", None, "I do not know.", "The answer is unclear."])
def test_extract_answer_is_none_without_a_number(text):
    assert extract_answer(text) is None


# A solution's own "#### X" line should be read the same way by extract_answer (model output) and
# gold_answer (dataset row); otherwise a correct model answer is graded wrong.
_HASH_SOLUTIONS = [
    "2 + 3 = 5\n#### 5",
    "#### 1,234",
    "#### $1,080",
    "#### -3",
    pytest.param("Half of 3/2 is 3/4.\n#### 3/4", id="fraction"),
    pytest.param("#### \\frac{1}{2}", id="latex-fraction"),
]


@pytest.mark.parametrize("solution", _HASH_SOLUTIONS)
def test_extract_answer_agrees_with_gold_answer_on_hash_lines(solution):
    assert answers_match(extract_answer(solution), gold_answer(solution, "gsm8k"))


def test_hash_line_fraction_does_not_match_its_numerator():
    assert not answers_match(extract_answer("#### 1/2"), "1")


# --------------------------------------------------------------------------- gold_answer


@pytest.mark.parametrize(
    "raw, answer_format, expected",
    [
        ("Natalia sold 48 / 2 = 24 clips in May.\n#### 72", "gsm8k", "72"),
        ("#### $1,080", "gsm8k", "1,080"),
        ("#### 12\n#### 13", "gsm8k", "13"),
        ("#### 5 apples", "gsm8k", "5 apples"),  # the whole line, unlike extract_answer
        ("So the probability is \\boxed{\\dfrac{3}{4}}.", "boxed", "\\dfrac{3}{4}"),
        ("\\boxed{2} or rather \\boxed{\\frac{1}{2}}", "boxed", "\\frac{1}{2}"),
        ("\\boxed{\\text{(A)}}", "boxed", "(A)"),
        ("\\boxed{\\mathrm{cm}}", "boxed", "cm"),
        ("\\boxed{\\left(1, 2\\right)}", "boxed", "(1, 2)"),  # sizing commands are dropped
        ("\\boxed{1\\!000}", "boxed", "1000"),  # and so is the thin negative space
        ("XIX", "plain", "XIX"),  # only trailing dots and commas are stripped
        ("  $1,080. ", "plain", "1,080"),
        ("Tuesday", "plain", "Tuesday"),
        ("  two   words ", "plain", "two words"),
    ],
)
def test_gold_answer(raw, answer_format, expected):
    assert gold_answer(raw, answer_format) == expected


@pytest.mark.parametrize(
    "raw, answer_format, message",
    [
        ("She has 72 clips.", "gsm8k", "no '#### <answer>' line"),
        ("The answer is \\boxed{", "boxed", "no \\\\boxed"),
        ("The answer is 3.", "boxed", "no \\\\boxed"),
        ("#### 3", "latex", "answer_format must be one of"),
        ("#### 3", "GSM8K", "answer_format must be one of"),
    ],
)
def test_gold_answer_errors(raw, answer_format, message):
    with pytest.raises(ValueError, match=message):
        gold_answer(raw, answer_format)


@pytest.mark.parametrize("answer_format", ["gsm8k", "boxed"])
def test_gold_answer_error_quotes_the_last_80_characters_of_the_row(answer_format):
    raw = "Q" * 20 + "x" * 80
    with pytest.raises(ValueError) as error:
        gold_answer(raw, answer_format)
    assert str(error.value).endswith(": " + repr("x" * 80))


# --------------------------------------------------------------------------- to_number


@pytest.mark.parametrize(
    "text, expected",
    [
        ("42", 42),
        (" 12 ", 12),
        ("-2.5", -2.5),
        ("0.5", 0.5),
        (".5", 0.5),
        ("1,234", 1234),
        ("1 234", 1234),  # spaces between digits are dropped like commas
        ("$1,234", 1234),
        ("-$5", -5),
        ("50%", 50),
        ("12.5%", 12.5),
        ("3/4", Fraction(3, 4)),
        ("1 / 2", Fraction(1, 2)),
        ("-3/4", Fraction(-3, 4)),
        ("\\frac{3}{4}", Fraction(3, 4)),
        ("\\dfrac{3}{4}", Fraction(3, 4)),
        ("\\tfrac{1}{8}", Fraction(1, 8)),
        ("-\\frac{3}{4}", Fraction(-3, 4)),
        ("\\frac{-3}{4}", Fraction(-3, 4)),
        ("1e3", 1000),
    ],
)
def test_to_number(text, expected):
    value = to_number(text)
    assert value is not None
    assert value == expected


def test_to_number_keeps_fractions_exact():
    assert to_number("1/3") == Fraction(1, 3)
    assert isinstance(to_number("\\frac{2}{6}"), Fraction)


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "abc",
        "five",
        "5 dollars",
        "x^{2}+1",
        "\\frac{a}{b}",
        "inf",
        "-inf",
        "nan",
        "1/0",
        "-3/0",
        "\\frac{1}{0}",
        "-\\frac{2}{0}",
    ],
)
def test_to_number_is_none_for_non_numbers_and_zero_denominators(text):
    assert to_number(text) is None


# --------------------------------------------------------------------------- answers_match


@pytest.mark.parametrize(
    "predicted, gold",
    [
        ("1,234", "1234"),
        ("$1,234", "1,234"),
        ("0.5", "1/2"),
        ("\\frac{1}{2}", "0.5"),
        ("-\\frac{3}{4}", "-0.75"),
        ("72.0", "72"),
        ("1000000", "1000000.5"),  # relative tolerance 1e-6
        ("0", "1e-10"),  # absolute tolerance 1e-9
        ("Tuesday", "tuesday"),
        ("\\text{Tuesday}", "TUESDAY"),
        ("(A)", "(a)"),
        ("two  words", "Two words"),
    ],
)
def test_answers_match(predicted, gold):
    assert answers_match(predicted, gold)


@pytest.mark.parametrize(
    "predicted, gold",
    [
        (None, "5"),
        (None, ""),
        ("1", "1.001"),
        ("0.5", "1/3"),
        ("-5", "5"),
        ("1234", "123"),
        ("Tuesday", "Wednesday"),
        ("5", "5 apples"),
        ("1/0", "0"),
    ],
)
def test_answers_do_not_match(predicted, gold):
    assert not answers_match(predicted, gold)


@pytest.mark.parametrize(
    "text, worked",
    [
        ("#### 12", False),
        ("12", False),
        ("  ", False),
        (None, False),
        ("x = 3", True),
        ("3 + 9 = 12\n#### 12", True),
        ("6*7=42\n#### 42", True),  # a single step of working before the hash line is enough
        ("Add them: 3 + 9 = 12. The answer is 12.", True),
    ],
)
def test_a_bare_final_answer_is_no_worked_solution(text, worked):
    from w2s.reasoning.answers import is_worked_solution

    assert is_worked_solution(text) is worked


# --------------------------------------------------------------------------- answer_key / majority_key


def test_answer_keys_group_numbers_by_value_and_text_case_folded():
    assert answer_key("1,000") == answer_key("$1000.0") == "1000.0"
    assert answer_key("\\frac{1}{2}") == answer_key("0.5") == "0.5"
    assert answer_key(" \\text{Tuesday}. ") == "tuesday"
    assert answer_key(None) is None
    assert answer_key(float("nan")) is None  # a sample with no answer, as pandas reads it


def test_majority_key_ignores_missing_answers_and_breaks_ties_by_first_appearance():
    assert majority_key([None, "7.0", "5.0", "5.0", None, None]) == "5.0"
    assert majority_key([None, "4.0", "3.0", "3.0", "4.0"]) == "4.0"  # 2 against 2: 4.0 came first
    assert majority_key([None, None]) is None
    assert majority_key([]) is None
