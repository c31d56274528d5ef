"""What a generative student learns from: SFT targets and DPO preference pairs built from samples.

Output of a student's ``train_set`` (one Parquet per student, the boundary between selection and
training): ``stage`` ("sft" or "dpo"), ``problem_id``, ``question``, ``chosen`` (the SFT target or
the preferred completion), ``rejected`` (null for SFT), ``origin`` (which rule produced the row).

SFT selections (``sft:``):
- ``all``: every weak sample, right or wrong (W2SR);
- ``verified``: weak samples whose aggregated weak-verifier score is >= ``verifier_threshold``;
- ``agreeing``: weak samples whose answer equals the strong model's own majority answer
  (progressive refinement, stage 1);
- ``gold``: the dataset's worked solutions (the ceiling; uses gold); refused for a task whose gold
  is only final answers, since fine-tuning on bare answers teaches the model to skip its reasoning;
- ``strong_correct``: rejection-sampling fine-tuning, the strong model's own train samples that gold
  marks correct (the ceiling for answer-only gold; uses gold);
- ``correct``: gold-correct weak samples (an oracle filter for reference; uses gold).

DPO pairs (``dpo:``):
- ``delta``: the weak model's sample over the weaker model's (Delta Learning);
- ``strong_majority``: a strong sample with the strong majority answer over one without
  (progressive refinement, stage 2);
- ``verifier``: the best over the worst weak sample by aggregated verifier score;
- ``correct``: a gold-correct over a gold-wrong weak sample (oracle; uses gold).
"""

from __future__ import annotations

import pandas as pd

from .answers import answer_key, majority_key

SFT_RULES = ("all", "verified", "agreeing", "gold", "strong_correct", "correct")
DPO_RULES = ("delta", "strong_majority", "verifier", "correct")
GOLD_RULES = {("sft", "gold"), ("sft", "strong_correct"), ("sft", "correct"), ("dpo", "correct")}
COLUMNS = ["stage", "problem_id", "question", "chosen", "rejected", "origin"]


def uses_gold(method: dict) -> bool:
    return any((stage, method.get(stage)) in GOLD_RULES for stage in ("sft", "dpo"))


def needed_generators(method: dict) -> set[str]:
    """Which base generators' train samples a method reads."""
    needed = set()
    if method.get("sft") in ("all", "verified", "agreeing", "correct") or method.get("dpo") in (
        "delta",
        "verifier",
        "correct",
    ):
        needed.add("weak")
    if method.get("sft") in ("agreeing", "strong_correct") or method.get("dpo") == "strong_majority":
        needed.add("strong")
    if method.get("dpo") == "delta":
        needed.add("weaker")
    return needed


def majority_answers(samples: pd.DataFrame) -> dict[str, str]:
    """Each problem's most common answer key (ties: the one reached first); problems with no answer are absent."""
    majority = {}
    for problem, group in samples.sort_values("sample_id").groupby("problem_id", sort=False):
        key = majority_key([answer_key(a) for a in group["answer"]])
        if key is not None:
            majority[problem] = key
    return majority


def agrees_with_majority(samples: pd.DataFrame, majority: dict[str, str]) -> pd.Series:
    """Per sample (in ``samples``' order): whether it states its problem's majority answer."""
    keys = samples["answer"].map(answer_key)
    return pd.Series(
        [key is not None and majority.get(p) == key for p, key in zip(samples["problem_id"], keys)],
        index=samples.index,
        dtype=bool,
    )


def _sft(frame: pd.DataFrame, questions: pd.Series, origin: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "stage": "sft",
            "problem_id": frame["problem_id"].to_numpy(),
            "question": questions.loc[frame["problem_id"]].to_numpy(),
            "chosen": frame["completion"].to_numpy(),
            "rejected": None,
            "origin": origin,
        },
        columns=COLUMNS,
    )


def sft_examples(
    rule: str,
    problems: pd.DataFrame,
    samples: dict[str, pd.DataFrame],
    verifier_scores: pd.DataFrame | None = None,
    threshold: float = 0.5,
) -> pd.DataFrame:
    """SFT rows of one ``rule`` on the train problems; ``samples`` maps generator -> its train samples."""
    train = problems[problems["split"] == "train"]
    questions = train.set_index("problem_id")["question"]
    if rule == "gold":
        solved = train[train["solution"].notna()]
        if solved.empty:
            raise ValueError(
                "sft: gold needs worked solutions, and this task's gold is only final answers; "
                "a ceiling fine-tuned on bare answers learns to skip its reasoning. Use "
                "`sft: strong_correct` (rejection sampling on the strong model's gold-correct samples)"
            )
        return _sft(solved.rename(columns={"solution": "completion"}), questions, "gold")
    if rule == "strong_correct":
        strong = samples["strong"]
        chosen = strong[strong["correct"].astype(bool)]
        return _sft(chosen, questions, "strong:correct")
    weak = samples["weak"]
    if rule == "all":
        chosen = weak
    elif rule == "correct":
        chosen = weak[weak["correct"]]
    elif rule == "verified":
        if verifier_scores is None:
            raise ValueError("sft: verified needs the weak samples' aggregated verifier scores")
        scored = _with_scores(weak, verifier_scores)
        chosen = scored[scored["score"] >= threshold]
    elif rule == "agreeing":
        chosen = weak[agrees_with_majority(weak, majority_answers(samples["strong"]))]
    else:
        raise ValueError(f"unknown sft rule {rule!r}; known: {SFT_RULES}")
    return _sft(chosen, questions, f"weak:{rule}")


def _with_scores(samples: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """``samples`` with the ``score`` column of the scores table (see w2s.reasoning.scoring)."""
    merged = samples.merge(scores[["problem_id", "sample_id", "score"]], on=["problem_id", "sample_id"], how="left")
    if merged["score"].isna().any():
        raise ValueError(f"{int(merged['score'].isna().sum())} weak sample(s) have no aggregated verifier score")
    return merged


def _pairs(rows: list[tuple[str, str, str]], questions: pd.Series, origin: str) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["problem_id", "chosen", "rejected"])
    frame = frame[frame["chosen"] != frame["rejected"]]
    return pd.DataFrame(
        {
            "stage": "dpo",
            "problem_id": frame["problem_id"].to_numpy(),
            "question": questions.loc[frame["problem_id"]].to_numpy() if len(frame) else [],
            "chosen": frame["chosen"].to_numpy(),
            "rejected": frame["rejected"].to_numpy(),
            "origin": origin,
        },
        columns=COLUMNS,
    )


def _split_pairs(samples: pd.DataFrame, is_chosen: pd.Series, max_pairs: int) -> list[tuple[str, str, str]]:
    """Up to ``max_pairs`` (chosen, rejected) per problem, pairing the i-th chosen with the i-th rejected."""
    rows = []
    for problem, group in samples.assign(_chosen=is_chosen.to_numpy()).groupby("problem_id", sort=False):
        good = group.loc[group["_chosen"], "completion"].tolist()
        bad = group.loc[~group["_chosen"], "completion"].tolist()
        rows += [(problem, g, b) for g, b in list(zip(good, bad))[:max_pairs]]
    return rows


def preference_pairs(
    rule: str,
    problems: pd.DataFrame,
    samples: dict[str, pd.DataFrame],
    verifier_scores: pd.DataFrame | None = None,
    max_pairs: int = 2,
    min_score_gap: float = 0.0,
) -> pd.DataFrame:
    """DPO rows of one ``rule`` on the train problems."""
    questions = problems[problems["split"] == "train"].set_index("problem_id")["question"]
    if rule == "delta":
        merged = samples["weak"].merge(samples["weaker"], on=["problem_id", "sample_id"], suffixes=("", "_weaker"))
        merged = merged.sort_values(["problem_id", "sample_id"]).groupby("problem_id", sort=False).head(max_pairs)
        rows = [(r.problem_id, r.completion, r.completion_weaker) for r in merged.itertuples()]
    elif rule == "strong_majority":
        strong = samples["strong"]
        rows = _split_pairs(strong, agrees_with_majority(strong, majority_answers(strong)), max_pairs)
    elif rule == "correct":
        rows = _split_pairs(samples["weak"], samples["weak"]["correct"].reset_index(drop=True), max_pairs)
    elif rule == "verifier":
        if verifier_scores is None:
            raise ValueError("dpo: verifier needs the weak samples' aggregated verifier scores")
        rows = []
        for problem, group in _with_scores(samples["weak"], verifier_scores).groupby("problem_id", sort=False):
            ranked = group.sort_values(["score", "sample_id"], ascending=[False, True])
            best, worst = ranked.iloc[0], ranked.iloc[-1]
            if best["score"] - worst["score"] > min_score_gap:
                rows.append((problem, best["completion"], worst["completion"]))
    else:
        raise ValueError(f"unknown dpo rule {rule!r}; known: {DPO_RULES}")
    return _pairs(rows, questions, f"{rule}")


def build_train_set(
    method: dict,
    problems: pd.DataFrame,
    samples: dict[str, pd.DataFrame],
    verifier_scores: pd.DataFrame | None,
    threshold: float,
    max_pairs: int,
) -> pd.DataFrame:
    """All rows one student trains on: its SFT stage (if any), then its DPO stage (if any)."""
    samples = {name: frame[frame["split"] == "train"].reset_index(drop=True) for name, frame in samples.items()}
    parts = []
    if method.get("sft"):
        parts.append(sft_examples(method["sft"], problems, samples, verifier_scores, threshold))
        if parts[-1].empty:
            raise ValueError(f"sft: {method['sft']} selected no examples; lower the threshold or sample more")
    if method.get("dpo"):
        parts.append(preference_pairs(method["dpo"], problems, samples, verifier_scores, max_pairs))
        if parts[-1].empty:
            raise ValueError(f"dpo: {method['dpo']} produced no pairs (every pair agreed); sample more per problem")
    if not parts:
        raise ValueError("a student needs an sft or a dpo stage")
    return pd.concat(parts, ignore_index=True)


def write_train_set(
    method: dict,
    problems_path: str,
    sample_paths: dict[str, str],
    weak_scores_path: str | None,
    threshold: float,
    max_pairs: int,
    out: str,
    provenance: dict | None = None,
) -> dict:
    """File-level entry point: problems and samples in, the student's train set Parquet out."""
    import pyarrow as pa

    from ..io import write_parquet

    problems = pd.read_parquet(problems_path)
    samples = {name: pd.read_parquet(path) for name, path in sample_paths.items()}
    scores = pd.read_parquet(weak_scores_path) if weak_scores_path else None
    rows = build_train_set(method, problems, samples, scores, threshold, max_pairs)
    schema = pa.schema([(c, pa.string()) for c in COLUMNS])
    write_parquet(
        pa.Table.from_pandas(rows, schema=schema, preserve_index=False),
        out,
        provenance={**(provenance or {}), "method": method, "uses_gold": uses_gold(method)},
    )
    return rows.groupby("stage").size().to_dict()
