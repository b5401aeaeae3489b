"""The configuration reference, ``docs/configuration.md``, generated from the schema.

Every key's description lives once, in ``rules/schemas/config.schema.yaml``; its default
is the shipped ``config.yaml``'s. Regenerate the page after changing either::

    python -m neurofusion.config_reference > docs/configuration.md

A test fails when the page and the schema disagree.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

#: The repository root (the schema and config.yaml sit there in a checkout).
REPO = Path(__file__).resolve().parents[2]
#: A default longer than this (characters) is shown as "see config.yaml".
MAX_DEFAULT_CHARS = 48

HEADER = """\
# Configuration reference

Every key of `config.yaml`, generated from the descriptions in
`rules/schemas/config.schema.yaml` (do not edit by hand: run
`python -m neurofusion.config_reference > docs/configuration.md`). The schema checks the
configuration when the workflow starts: an unknown key or a wrong type stops it with the
key named. Pass your own settings with `--configfile my.yaml`; they are merged over the
shipped `config.yaml`, so list only what you change.
"""


def _resolve(node: Mapping[str, Any], schema: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    return schema["$defs"][ref.removeprefix("#/$defs/")]


def leaf_keys(schema: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every configuration key that takes a value, as ``("a.b.c", its schema node)``."""

    def walk(node, path):
        node = _resolve(node, schema)
        if "properties" not in node:
            yield path, node
            return
        for key, child in node["properties"].items():
            yield from walk(child, f"{path}.{key}" if path else key)

    yield from walk(schema, "")


def _lookup(config: Mapping[str, Any], key: str) -> Any:
    value: Any = config
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _default(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("\n...").removesuffix("...").strip()
    if len(text) > MAX_DEFAULT_CHARS:
        return "see `config.yaml`"
    return f"`{text}`"


def configuration_reference(schema: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """The Markdown page: one table per top-level block, one row per key.

    Parameters
    ----------
    schema : mapping
        The parsed ``config.schema.yaml``.
    config : mapping
        The parsed shipped ``config.yaml`` (the defaults).

    Returns
    -------
    str
        The page.

    Raises
    ------
    ValueError
        A key of the schema has no ``description``.
    """
    missing = [key for key, node in leaf_keys(schema) if not node.get("description")]
    if missing:
        raise ValueError(f"config.schema.yaml: no description for {', '.join(missing)}")
    sections: dict[str, list[str]] = {}
    for key, node in leaf_keys(schema):
        block = key.split(".")[0] if "." in key else "general"
        value = _lookup(config, key)
        default = _default(value if value is not None else node.get("default"))
        description = " ".join(str(node["description"]).split()).replace("|", "\\|")
        sections.setdefault(block, []).append(f"| `{key}` | {default} | {description} |")
    lines = [HEADER]
    for block, rows in sections.items():
        lines += [f"## {block}", "", "| key | default | meaning |", "|---|---|---|", *rows, ""]
    return "\n".join(lines)


def main() -> int:
    """Print the page for this checkout's schema and config.yaml."""
    schema = yaml.safe_load((REPO / "rules" / "schemas" / "config.schema.yaml").read_text())
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    sys.stdout.write(configuration_reference(schema, config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
