"""Burns et al. (2023) task suite by name: registry entries and the loader."""

from .base import Item, SuiteError, SuiteTask
from .loader import load_suite
from .registry import SUITE, get_task

__all__ = ["SUITE", "Item", "SuiteError", "SuiteTask", "get_task", "load_suite"]
