"""A YAML loader that refuses a key given twice in one mapping.

PyYAML's safe loader keeps the last value, so a second ``routes.fast`` further
down a configuration file would replace the first without a word.
"""

from __future__ import annotations

from typing import Any

import yaml


class DuplicateKey(yaml.YAMLError):
    """A mapping in the file gives the same key twice."""

    def __init__(self, key: str, first: int, second: int) -> None:
        super().__init__(f"duplicate key {key} (lines {first} and {second})")


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping.

    The plain loader keeps the last value, so a second ``routes.fast`` further
    down the file would replace the first without a word.
    """

    def construct_document(self, node: yaml.Node) -> Any:
        """Checks every mapping's keys, then builds the document."""
        _check_keys(node)
        return super().construct_document(node)


def _check_keys(root: yaml.Node) -> None:
    """Raises ``DuplicateKey`` for a mapping that repeats a key (merge keys aside)."""
    seen: set[int] = set()  # anchored nodes may recur, and an alias may point at an ancestor
    pending: list[tuple[yaml.Node, str]] = [(root, "")]
    while pending:
        node, path = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            pending += [(item, f"{path}{index}.") for index, item in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode):
            lines: dict[str, int] = {}
            for key, value in node.value:
                if key.tag == "tag:yaml.org,2002:merge" or not isinstance(key, yaml.ScalarNode):
                    pending.append((value, path))
                    continue
                line = key.start_mark.line + 1
                if key.value in lines:
                    raise DuplicateKey(f"{path}{key.value}", lines[key.value], line)
                lines[key.value] = line
                pending.append((value, f"{path}{key.value}."))
