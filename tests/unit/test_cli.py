"""The command line every rule runs: stages that need no torch start without importing it, and the
thread cap still reaches torch when a stage imports it later; linear-probe jobs load no model code."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def _python(code: str) -> str:
    env = {"PYTHONPATH": str(ROOT / "workflow"), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def test_a_stage_without_torch_does_not_import_it():
    code = (
        "import sys\nfrom w2s.cli import main\n"
        "try:\n    main(['--threads', '1', 'summarize', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    assert _python(code).splitlines()[-1] == "False"


def test_the_thread_cap_reaches_torch_imported_after_it():
    code = "from w2s.cli import limit_threads\nlimit_threads(1)\nimport torch\nprint(torch.get_num_threads())"
    assert _python(code) == "1"


def test_the_thread_cap_reaches_torch_imported_before_it():
    code = (
        "import torch\ntorch.set_num_threads(2)\nfrom w2s.cli import limit_threads\nlimit_threads(1)\n"
        "print(torch.get_num_threads())"
    )
    assert _python(code) == "1"


def test_a_linear_probe_student_loads_neither_transformers_nor_vllm():
    # train_student's entry module; transformers (~4 s of imports) loads only where a model is built.
    code = (
        "import sys\nimport w2s.cli, w2s.strong, w2s.features, w2s.train, w2s.learners\n"
        "print(sorted(m for m in ('transformers', 'vllm', 'peft') if m in sys.modules))"
    )
    assert _python(code) == "[]"


def test_renamed_commands_still_run_with_a_deprecation_warning(caplog, monkeypatch):
    import w2s.cli as cli

    parser = cli.build_parser()
    for old, new in cli.RENAMED.items():
        old_args, new_args = parser.parse_args([old, *_minimal(new)]), parser.parse_args([new, *_minimal(new)])
        assert old_args.handler is new_args.handler, (old, new)
    ran = []
    monkeypatch.setattr(cli, "cmd_train_teacher", lambda args: ran.append(args.command))
    monkeypatch.setattr(cli, "limit_threads", lambda threads: None)
    with caplog.at_level("WARNING", logger="w2s"):
        cli.main(["train-teacher", *_minimal("train-weak")])
        cli.main(["train-weak", *_minimal("train-weak")])
    assert ran == ["train-teacher", "train-weak"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        "`w2s train-teacher` is deprecated and will be removed in the next version: use `w2s train-weak`"
    ]


def _minimal(command: str) -> list[str]:
    """The fewest arguments each renamed command parses with."""
    pairs = ["x=y"]
    return {
        "train-weak": [
            "--train",
            "a",
            "--val",
            "b",
            "--manifest",
            "c",
            "--checkpoint",
            "d",
            "--seed",
            "0",
            "--out-dir",
            "e",
        ],
        "label-weak": ["--checkpoint", "a", "--inputs", *pairs, "--outputs", *pairs],
        "combine-weak-labels": ["--members", *pairs, "--rule", "mean", "--outputs", *pairs],
        "degrade-weak-labels": [
            "--source",
            *pairs,
            "--gold",
            *pairs,
            "--target-accuracy",
            "0.7",
            "--seed",
            "0",
            "--outputs",
            *pairs,
        ],
        "aggregate-weak-labels": ["--teachers", *pairs, "--outputs", *pairs, "--table-out", "t", "--metadata-out", "m"],
    }[command]
