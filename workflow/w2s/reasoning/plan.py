"""Who generates what in a reasoning experiment, read from the resolved config (used by the rules).

Generators are the three base models of ``reasoning`` (``weak``, ``weaker`` when a delta student
needs it, ``strong``) and the trained ones (``ceiling`` and every student). Base models sample the
train problems (what students learn from) and, except ``weaker``, the test problems (baselines);
trained models sample the test problems only, with the strong model's sampling settings.
"""

from __future__ import annotations

from .selection import needed_generators, uses_gold

BASE = ("weak", "weaker", "strong")


def trained_models(config: dict) -> dict[str, dict]:
    """The ceiling and the students, name -> {sft, dpo}."""
    reasoning = config["reasoning"]
    return {"ceiling": reasoning["ceiling"], **reasoning["students"]}


def base_generators(config: dict) -> list[str]:
    needed = set().union(*(needed_generators(m) for m in trained_models(config).values()))
    return [g for g in BASE if g != "weaker" or "weaker" in needed]


def generators(config: dict) -> list[str]:
    return [*base_generators(config), *trained_models(config)]


def role(config: dict, generator: str) -> str:
    if generator in BASE or generator == "ceiling":
        return generator
    if generator in config["reasoning"]["students"]:
        return "student"
    raise KeyError(f"unknown reasoning generator {generator!r}")


def _base_spec(config: dict, generator: str) -> dict:
    """The base generator's config entry; trained generators start from and sample like the strong model."""
    return config["reasoning"][generator if generator in BASE else "strong"]


def model_name(config: dict, generator: str) -> str:
    """The `models` entry a generator samples from or (trained generators) starts from."""
    return _base_spec(config, generator)["model"]


def sampling(config: dict, generator: str) -> dict:
    """reasoning.sampling overlaid by the generator's own (trained generators use the strong model's)."""
    reasoning = config["reasoning"]
    base = _base_spec(config, generator)["sampling"]
    merged = {**reasoning["sampling"], **base}
    merged["prompt"] = {**reasoning["sampling"].get("prompt", {}), **base.get("prompt", {})}
    return merged


def samples_per_split(config: dict, generator: str) -> dict[str, int]:
    n = config["reasoning"]["samples_per_problem"]
    if generator == "weaker":
        return {"train": n["train"]}
    if generator in BASE:
        return {"train": n["train"], "test": n["test"]}
    return {"test": n["test"]}


def train_set_inputs(config: dict, student: str) -> list[str]:
    """Base generators whose samples (and, for verifier rules, scores of the weak's) a student reads."""
    return sorted(needed_generators(trained_models(config)[student]))


def reads_weak_scores(method: dict) -> bool:
    return method.get("sft") == "verified" or method.get("dpo") == "verifier"


def student_uses_gold(config: dict, generator: str) -> bool:
    return generator == "ceiling" or (
        generator in config["reasoning"]["students"] and uses_gold(config["reasoning"]["students"][generator])
    )
