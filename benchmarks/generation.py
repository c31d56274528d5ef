"""Generation throughput of the reasoning track: vLLM (what `reasoning_sample_*` jobs run) against a
plain transformers `generate` loop, same model, same prompts, same sampling settings.

Model: SmolLM2-135M-Instruct (the packaged GGUF, dequantized to fp32). Prompts: gsm_symbolic
problems from reasoning-gym in the workflow's chat prompt, N samples each, temperature 0.7, top-p
0.95, `max_tokens` new tokens (every sample runs to the limit or to EOS).

- reference: transformers `model.generate`, batches of `--batch` prompts left-padded, `num_return_sequences=N`
  (the usual research-script loop). The baseline of every ratio;
- vllm <config>: `vllm.LLM.generate` as `w2s.reasoning.generation` calls it, each configuration in a
  fresh process, so the engine start is what a job pays (reported apart from steady-state throughput).

Rounds alternate reference and candidate inside the candidate's process, seconds apart.

    .venv/bin/python benchmarks/generation.py           # 8 problems x 4 samples x 128 tokens, 2 rounds, 2 configs
    .venv/bin/python benchmarks/generation.py --quick   # 8 x 2 x 64, 1 round, vllm default only
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import markdown_table, median, print_header, spread  # noqa: E402

MODEL = "builtin:SmolLM2-135M-Instruct"
# Environment of each vLLM configuration (set before vLLM is imported in its fresh process).
CONFIGS: dict[str, dict[str, str]] = {
    "vllm default": {},
    "vllm 2 OMP threads": {"OMP_NUM_THREADS": "2"},
    "vllm no reserved CPU": {"VLLM_CPU_NUM_OF_RESERVED_CPU": "0"},
}


def prompts(n_problems: int) -> tuple[str, list[list[int]]]:
    import reasoning_gym
    from transformers import AutoTokenizer

    from w2s.models import resolve_checkpoint
    from w2s.reasoning.prompts import PromptSettings, prompt_ids

    checkpoint = resolve_checkpoint(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    problems = reasoning_gym.create_dataset("gsm_symbolic", size=n_problems, seed=0)
    return checkpoint, [prompt_ids(tokenizer, p["question"], PromptSettings()) for p in problems]


def reference_generate(model, tokenizer, ids: list[list[int]], n: int, max_tokens: int, batch: int) -> int:
    """Generated tokens (up to and including EOS) of a plain transformers sampling loop."""
    import torch

    total = 0
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        width = max(map(len, chunk))
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in chunk])
        attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk])
        with torch.no_grad():
            out = model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                do_sample=True,
                temperature=0.7,
                top_p=0.95,
                max_new_tokens=max_tokens,
                num_return_sequences=n,
                pad_token_id=pad,
            )
        new = out[:, width:]
        ended = (new == tokenizer.eos_token_id).int()
        lengths = torch.where(ended.any(1), ended.argmax(1) + 1, torch.full((len(new),), new.shape[1]))
        total += int(lengths.sum())
    return total


def run_config(
    connection, name: str, env: dict, n_problems: int, n: int, max_tokens: int, batch: int, rounds: int
) -> None:
    os.environ.update(env)
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"  # the workflow's default (engine.in_process)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    checkpoint, ids = prompts(n_problems)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    started = time.perf_counter()
    import vllm

    llm = vllm.LLM(model=checkpoint, dtype="float32", seed=0, max_model_len=1024, enforce_eager=True)
    start_s = time.perf_counter() - started
    params = vllm.SamplingParams(n=n, temperature=0.7, top_p=0.95, max_tokens=max_tokens)
    requests = [{"prompt_token_ids": p} for p in ids]
    results = {"reference": [], name: [], "start": start_s}
    for _ in range(rounds):
        t = time.perf_counter()
        tokens = reference_generate(model, tokenizer, ids, n, max_tokens, batch)
        results["reference"].append(tokens / (time.perf_counter() - t))
        time.sleep(1.5)  # vLLM's worker busy-polls for a second after its last request
        t = time.perf_counter()
        outputs = llm.generate(requests, params, use_tqdm=False)
        tokens = sum(len(c.token_ids) for o in outputs for c in o.outputs)
        results[name].append(tokens / (time.perf_counter() - t))
    connection.send(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--configs", nargs="+", default=None, choices=sorted(CONFIGS))
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    n_problems, n, max_tokens, rounds = (8, 2, 64, 1) if args.quick else (8, 4, 128, 2)
    rounds = args.rounds or rounds
    configs = args.configs or (["vllm default"] if args.quick else ["vllm default", "vllm no reserved CPU"])
    print_header("Generation throughput: vLLM vs a transformers generate loop")
    print(
        f"workload: {n_problems} gsm_symbolic problems x {n} samples x up to {max_tokens} new tokens, "
        f"{rounds} round(s), reference batches of 8 prompts\n"
    )
    context = multiprocessing.get_context("spawn")
    rows = []
    for name in configs:
        receive, send = context.Pipe(duplex=False)
        process = context.Process(
            target=run_config, args=(send, name, CONFIGS[name], n_problems, n, max_tokens, 8, rounds)
        )
        process.start()
        results = receive.recv()
        process.join()
        ratios = [c / r for c, r in zip(results[name], results["reference"])]
        rows.append(
            [
                name,
                f"{results['start']:.1f}",
                spread(results["reference"]),
                spread(results[name]),
                f"**{median(ratios):.2f}x**",
            ]
        )
        print(f"{name}: done", flush=True)
    print("## CPU: generated tokens/s (median [min-max] over rounds)")
    print(markdown_table(["candidate", "engine start s", "reference tok/s", "candidate tok/s", "ratio"], rows))
    print(
        "\n## GPU\nnot measured by this script on a CPU-only machine (the workflow's GPU path is the same "
        "vllm.LLM.generate call)."
    )


if __name__ == "__main__":
    main()
