"""YAML loading that remembers line numbers, so spec errors can point at them.

Mappings load as :class:`LineDict` and sequences as :class:`LineList`; each
knows the line it starts on and the line of each key or element.
"""

from __future__ import annotations

from typing import Any

from pytest_behavior.errors import SpecError


class LineDict(dict[str, Any]):
    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.lines: dict[str, int] = {}

    def line_of(self, key: str) -> int:
        return self.lines.get(key, self.line)


class LineList(list[Any]):
    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.lines: list[int] = []

    def line_of(self, index: int) -> int:
        return self.lines[index] if index < len(self.lines) else self.line


def load_yaml(text: str, path: str) -> Any:
    """Parse one YAML document; syntax errors become a located :class:`SpecError`."""
    import yaml

    class LineLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> LineDict:
        loader.flatten_mapping(node)
        mapping = LineDict(node.start_mark.line + 1)
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                raise SpecError(path, line, f"keys must be text, found {key!r}")
            if key in mapping:
                raise SpecError(
                    path,
                    line,
                    f"duplicate key {key!r}",
                    f"it is also set on line {mapping.lines[key]}",
                )
            mapping[key] = loader.construct_object(value_node, deep=True)
            mapping.lines[key] = line
        return mapping

    def construct_sequence(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> LineList:
        sequence = LineList(node.start_mark.line + 1)
        for child in node.value:
            sequence.append(loader.construct_object(child, deep=True))
            sequence.lines.append(child.start_mark.line + 1)
        return sequence

    LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, construct_sequence)
    try:
        return yaml.load(text, Loader=LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(
            path,
            line,
            f"invalid YAML: {problem}",
            "check indentation and quoting; text with ':' or '#' needs quotes",
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(path, None, f"invalid YAML: {exc}") from None
