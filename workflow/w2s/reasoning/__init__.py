"""The generative weak-to-strong track: problems with verifiable answers, sampled solutions,
SFT/DPO students and pass@k-style evaluation. See ``docs/reasoning.md``."""
