"""Feature extraction throughput: ``w2s.inference.pooled_features`` against a plain loop and the fp32 peak.

The ``extract_features`` stage embeds every transfer, val and test text once with the frozen strong
model (mean-pooled last hidden states for encoders). Two loops embed the same real Rotten Tomatoes
reviews with the packaged MPNet-base (``builtin:all-mpnet-base-v2``, the default strong model) at
the workflow's defaults (batches of 32, ``max_length`` 128), in alternation:

- ours: ``pooled_features`` as the stage runs it (texts tokenized once, batches of similar length,
  each padded to its longest text, ``torch.inference_mode``);
- reference: dataset order, each batch padded to its longest text, ``torch.no_grad`` (the plain
  loop of a sentence-embedding script).

Both must give the same features (checked to 1e-4). Achieved FLOP/s = 2 x N x tokens / time, with N
the non-embedding parameters, for real tokens (useful work) and for tokens including padding (work
done); the peak is the best fp32 2048 x 2048 ``torch.matmul`` in the same run.

    .venv/bin/python benchmarks/features.py           # 512 texts, 3 alternating rounds
    .venv/bin/python benchmarks/features.py --quick   # 128 texts, 1 round
"""

from __future__ import annotations

import argparse
import time

from common import gpu_section, markdown_table, median, print_header, reviews, spread

# isort: split
# (common first: it sets environment defaults that torch and tqdm read when they load)
import numpy as np
import torch
from training import matmul_peak, non_embedding_params, synchronizer

MAX_LENGTH = 128
BATCH = 32
MODEL = "builtin:all-mpnet-base-v2"
BF16 = "ours: pooled_features, bf16 weights (precision auto on AMX-BF16)"


def reference_features(model, tokenizer, texts: list[str]) -> tuple[np.ndarray, int]:
    """Mean-pooled features in dataset order; also the tokens computed, padding included."""
    device = next(model.parameters()).device
    rows, padded = [], 0
    with torch.no_grad():
        for start in range(0, len(texts), BATCH):
            batch = tokenizer(
                texts[start : start + BATCH], truncation=True, max_length=MAX_LENGTH, padding=True, return_tensors="pt"
            ).to(device)
            padded += batch["input_ids"].numel()
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            rows.append(((hidden * mask).sum(1) / mask.sum(1)).float().cpu().numpy())
    return np.concatenate(rows), padded


def padded_tokens_of_ours(lengths: list[int]) -> int:
    from w2s.batching import length_sorted_batches

    return sum(
        len(index) * max(lengths[i] for i in index)
        for index in length_sorted_batches([[0] * n for n in lengths], BATCH)
    )


def measure(device: str, count: int, rounds: int) -> None:
    from transformers import AutoModel, AutoTokenizer

    from w2s.batching import prepare_tokenizer
    from w2s.inference import pooled_features
    from w2s.models import resolve_checkpoint
    from w2s.runtime import native_bf16

    checkpoint = resolve_checkpoint(MODEL)
    model = AutoModel.from_pretrained(checkpoint, dtype=torch.float32).to(device).eval()
    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(checkpoint))
    texts = reviews()[:count]
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]]
    real, ours_padded = sum(lengths), padded_tokens_of_ours(lengths)
    sync = synchronizer(device)

    def ours() -> tuple[np.ndarray, int]:
        return pooled_features(model, tokenizer, texts, MAX_LENGTH, BATCH, "mean"), ours_padded

    loops = {
        "ours: pooled_features (length-sorted), fp32": ours,
        "reference: dataset order": lambda: reference_features(model, tokenizer, texts),
    }
    if native_bf16(torch.device(device)):  # what the stage's precision `auto` runs here: bf16 weights
        model_bf16 = AutoModel.from_pretrained(checkpoint, dtype=torch.bfloat16).to(device).eval()
        loops[BF16] = lambda: (pooled_features(model_bf16, tokenizer, texts, MAX_LENGTH, BATCH, "mean"), ours_padded)
    for run in loops.values():  # warm-up: allocator and first-call costs
        run()
    peaks = [matmul_peak(device)]
    times: dict[str, list[float]] = {name: [] for name in loops}
    padded: dict[str, int] = {}
    outputs: dict[str, np.ndarray] = {}
    for round_index in range(rounds):
        for name in list(loops) if round_index % 2 == 0 else list(loops)[::-1]:
            sync()
            start = time.perf_counter()
            outputs[name], padded[name] = loops[name]()
            sync()
            times[name].append(time.perf_counter() - start)
        peaks.append(matmul_peak(device))
        print(f"round {round_index + 1}: " + ", ".join(f"{n} {t[-1]:.1f} s" for n, t in times.items()), flush=True)

    ours_name, ref_name = list(loops)[:2]
    max_diff = float(np.abs(outputs[ours_name] - outputs[ref_name]).max())
    if max_diff > 1e-4:
        raise AssertionError(f"ours and the reference disagree by {max_diff:.2e}")
    if BF16 in outputs:
        a, b = outputs[BF16], outputs[ours_name]
        cosine = float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())
        print(f"bf16 features vs fp32: min cosine {cosine:.6f}, max abs difference {np.abs(a - b).max():.1e}")
    params, peak = non_embedding_params(model), max(peaks)
    print(
        f"\n{count} texts ({real} real tokens, {real / count:.1f} per text), {rounds} rounds; MPNet-base "
        f"{params / 1e6:.1f}M non-embedding parameters; fp32 matmul peak {peak / 1e9:.0f} GFLOP/s (best of "
        f"{len(peaks)}, median {median(peaks) / 1e9:.0f}); features agree to {max_diff:.1e}\n"
    )
    rows = []
    for name, t in times.items():
        real_flops, padded_flops = 2 * params * real / median(t), 2 * params * padded[name] / median(t)
        rows.append(
            [
                name,
                spread(t),
                f"{count / median(t):.1f}",
                f"{padded[name] / real:.2f}",
                spread([r / o for o, r in zip(t, times[ref_name])]) if name != ref_name else "1",
                f"{real_flops / 1e9:.0f} ({real_flops / peak:.0%})",
                f"{padded_flops / 1e9:.0f} ({padded_flops / peak:.0%})",
            ]
        )
    print(
        markdown_table(
            [
                "loop",
                "seconds per round",
                "examples/s",
                "padded / real tokens",
                "faster than reference (x, per round)",
                "GFLOP/s real tokens (of peak)",
                "GFLOP/s incl. padding (of peak)",
            ],
            rows,
        )
    )
    print("\nAttention FLOPs are left out (small at these lengths), so the shares of the peak are lower bounds.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="128 texts, 1 round")
    parser.add_argument("--texts", type=int, help="texts per loop per round (default 512)")
    parser.add_argument("--rounds", type=int, help="alternating rounds (default 3)")
    args = parser.parse_args()
    count = args.texts or (128 if args.quick else 512)
    rounds = args.rounds or (1 if args.quick else 3)
    print_header("Feature extraction: w2s.inference.pooled_features vs a dataset-order loop")
    measure("cpu", count, rounds)
    gpu_section(lambda device: measure(device, count, rounds))


if __name__ == "__main__":
    main()
