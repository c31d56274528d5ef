"""The configuration reference page is generated from the schema and must match it."""

import copy

from w2s.config_reference import PAGE, entries, render
from w2s.schema import load_schema


def test_the_page_matches_the_schema():
    # On failure: run `python -m w2s.config_reference` and commit docs/configuration.md.
    assert PAGE.read_text() == render(), f"{PAGE} is stale: run `python -m w2s.config_reference`"


def test_a_schema_change_the_page_lacks_is_caught():
    schema = load_schema()
    changed = copy.deepcopy(schema)
    changed["properties"]["evaluation"]["properties"]["ece_bins"]["default"] = 15
    assert render(changed) != render(schema)
    changed = copy.deepcopy(schema)
    changed["properties"]["evaluation"]["properties"]["new_key"] = {"type": "integer", "description": "x"}
    assert "`evaluation.new_key`" in render(changed) and "`evaluation.new_key`" not in PAGE.read_text()


def test_every_key_is_listed_with_references_and_named_maps_followed():
    keys = {key for key, *_ in entries(load_schema(), load_schema())}
    assert {
        "tasks.<name>.sizes.test",
        "weak.train.epochs",
        "strong.methods.<name>.loss",
        "evaluation.confidence_level",
    } <= keys
