"""The configuration reference page, written from the schema (``docs/configuration.md``).

Every key of ``workflow/schemas/config.schema.yaml`` becomes one row: its dotted path (``<name>``
stands for a name the user chooses), its type, its default and its description. The page is
generated, never edited by hand: ``python -m w2s.config_reference`` rewrites it, and a test fails
when page and schema disagree.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

from .schema import SCHEMA_PATH, load_schema
from .schema import _resolve as resolve_ref

PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
HEADER = """# Configuration reference

<!-- Generated from workflow/schemas/config.schema.yaml by `python -m w2s.config_reference`; edit the schema. -->

Every key of `config.yaml`, validated against `workflow/schemas/config.schema.yaml`, which also fills
each default. `<name>` stands for a name you choose (a task, a model, a method, ...).
"""


def _type(node: dict) -> str:
    if "type" in node:
        kinds = node["type"] if isinstance(node["type"], list) else [node["type"]]
        text = " or ".join(kinds)
    elif "oneOf" in node or "anyOf" in node:
        text = " or ".join(_type(option) for option in node.get("oneOf", node.get("anyOf")))
    elif "const" in node:
        text = json.dumps(node["const"])
    else:
        text = "any"
    if "enum" in node:
        text += ": " + ", ".join(json.dumps(v) for v in node["enum"])
    return text


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def entries(node: dict, root: dict, path: str = "") -> Iterator[tuple[str, str, str, str]]:
    """(path, type, default, description) of every key under ``node``, depth first in schema order."""
    node = resolve_ref(node, root)
    for name, child in node.get("properties", {}).items():
        child = resolve_ref(child, root)
        key = f"{path}.{name}" if path else name
        default = json.dumps(child["default"]) if "default" in child else ""
        yield key, _type(child), default, child.get("description", "")
        yield from entries(child, root, key)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        yield from entries(extra, root, f"{path}.<name>")


def render(schema: dict | None = None) -> str:
    """The reference page: one table per top-level key."""
    schema = schema or load_schema()
    lines = [HEADER]
    for name in schema["properties"]:
        rows = [row for row in entries({"properties": {name: schema["properties"][name]}}, schema)]
        lines += [
            f"## `{name}`",
            "",
            _cell(rows[0][3]),
            "",
            "| key | type | default | description |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| `{key}` | {_cell(kind)} | {f'`{_cell(default)}`' if default else ''} | {_cell(text)} |"
            for key, kind, default, text in rows
        ]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Write the page (default ``docs/configuration.md``), or with ``--check`` exit 1 when it is stale."""
    args = argv if argv is not None else sys.argv[1:]
    page = render()
    if args[:1] == ["--check"]:
        if not PAGE.is_file() or PAGE.read_text() != page:
            sys.exit(f"{PAGE} is stale: run `python -m w2s.config_reference` ({SCHEMA_PATH} changed)")
        return
    PAGE.write_text(page)


if __name__ == "__main__":
    main()
