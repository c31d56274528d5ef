"""The command line every rule runs: stages that need no torch start without importing it, and the
thread cap still reaches torch when a stage imports it later; linear-probe jobs load no model code."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def _python(code: str) -> str:
    env = {"PYTHONPATH": str(ROOT / "workflow"), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_a_stage_without_torch_does_not_import_it():
    code = ("import sys\nfrom w2s.cli import main\n"
            "try:\n    main(['--threads', '1', 'summarize', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    assert _python(code).splitlines()[-1] == "False"


def test_the_thread_cap_reaches_torch_imported_after_it():
    code = "from w2s.cli import limit_threads\nlimit_threads(1)\nimport torch\nprint(torch.get_num_threads())"
    assert _python(code) == "1"


def test_the_thread_cap_reaches_torch_imported_before_it():
    code = ("import torch\ntorch.set_num_threads(2)\nfrom w2s.cli import limit_threads\nlimit_threads(1)\n"
            "print(torch.get_num_threads())")
    assert _python(code) == "1"


def test_a_linear_probe_student_loads_neither_transformers_nor_vllm():
    # train_student's entry module; transformers (~4 s of imports) loads only where a model is built.
    code = ("import sys\nimport w2s.cli, w2s.strong, w2s.features, w2s.train, w2s.learners\n"
            "print(sorted(m for m in ('transformers', 'vllm', 'peft') if m in sys.modules))")
    assert _python(code) == "[]"
