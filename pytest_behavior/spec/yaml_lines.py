"""YAML loading that remembers line numbers, so spec errors can point at them.

Mappings load as :class:`LineDict` and sequences as :class:`LineList`; each
knows the line it starts on and the line of each key or element.
"""

from __future__ import annotations

from typing import Any

from pytest_behavior.errors import SpecError, brief

# Bounds that keep a broken or hostile file from exhausting the stack, the memory or
# the clock. A real spec nests a handful of levels and expands to a few thousand values.
MAX_DEPTH = 100
MAX_EXPANDED_VALUES = 1_000_000
MAX_LINE_LENGTH = 100_000
_DEPTH_HINT = "a spec nests a few levels (traits > trait > cases > case); check the brackets"
_YAML_TAG_PREFIX = "tag:yaml.org,2002:"
_KINDS = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "timestamp": "a date",
    "null": "null",
}


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
    """Parse one YAML document; every problem becomes a located :class:`SpecError`.

    Only plain data loads (text, numbers, booleans, null, lists, mappings): a tag
    that would build anything else is refused. Nesting, line length and the size
    aliases expand to are bounded, so no file can exhaust the stack, the memory
    or the clock.
    """
    import yaml

    _check_line_lengths(text, path)

    class LineLoader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            # The composer recurses once per level: refuse before Python's stack runs out.
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    raise SpecError(
                        path,
                        self.peek_event().start_mark.line + 1,  # type: ignore[no-untyped-call]
                        f"lists and mappings nested more than {MAX_DEPTH} levels deep",
                        _DEPTH_HINT,
                    )
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

        def construct_object(self, node: Any, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep=deep)
            except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError):
                # PyYAML's own constructors fail this way on `!!bool maybe`, `!!float abc`,
                # `0x_` (an int by its look), `!!timestamp x` or a number too long to convert.
                raise SpecError(
                    path,
                    node.start_mark.line + 1,
                    f"cannot read {_shown_node(node)} as {_kind(node.tag)}",
                    "quote it to keep it as text, or write a valid value",
                ) from None

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> LineDict:
        loader.flatten_mapping(node)
        mapping = LineDict(node.start_mark.line + 1)
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                raise SpecError(path, line, f"keys must be text, found {brief(key)}")
            if key in mapping:
                raise SpecError(
                    path,
                    line,
                    f"duplicate key {brief(key)}",
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

    def refuse_tag(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        raise SpecError(
            path,
            node.start_mark.line + 1,
            f"tag {brief(_tag_name(node.tag))} is not allowed",
            "a spec holds plain data (text, numbers, true/false, lists, mappings); remove the tag",
        )

    LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, construct_sequence)
    # Tags with no constructor of their own (!!python/object/apply:..., !custom) land here.
    LineLoader.add_constructor(None, refuse_tag)
    loader: LineLoader | None = None
    try:
        loader = LineLoader(text)  # the reader refuses control characters here
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, path)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(
            path,
            line,
            f"invalid YAML: {_cut(problem)}",
            "check indentation and quoting; text with ':' or '#' needs quotes",
        ) from None
    except yaml.reader.ReaderError as exc:
        raise SpecError(
            path,
            text.count("\n", 0, exc.position) + 1,
            f"invalid YAML: control character {_code_point(exc.character)} in the text",
            "a spec is plain text; is this a binary file?",
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(path, None, f"invalid YAML: {_cut(str(exc))}") from None
    except RecursionError:  # a safety net: the depth checks above come first
        raise SpecError(path, None, "nested too deeply to read", _DEPTH_HINT) from None
    finally:
        if loader is not None:
            loader.dispose()


def _check_line_lengths(text: str, path: str) -> None:
    if len(text) <= MAX_LINE_LENGTH:
        return
    for number, line in enumerate(text.split("\n"), start=1):
        if len(line) > MAX_LINE_LENGTH:
            raise SpecError(
                path,
                number,
                f"line is {len(line):,} characters long (at most {MAX_LINE_LENGTH:,})",
                "break long text over lines (a YAML block scalar: question: |) "
                "or move the cases to a JSONL source",
            )


def _check_expansion(root: Any, path: str) -> None:
    """Refuse a document whose aliases expand too far or too deep, before building it.

    An alias (``*name``) stands for its anchor's whole value, so nine lists of nine
    aliases to the previous one ("billion laughs") expand to 9**9 values. Sizes
    and depths are counted per node, once each, so this costs one pass over what
    the file actually holds.
    """
    import yaml

    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        if children_done:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            depths[key] = 1 + max((depths[id(child)] for child in children), default=0)
            line = node.start_mark.line + 1
            if sizes[key] > MAX_EXPANDED_VALUES:
                raise SpecError(
                    path,
                    line,
                    f"aliases here expand to more than {MAX_EXPANDED_VALUES:,} values",
                    "use fewer aliases (*name) or write the values out; "
                    "this looks like an alias bomb",
                )
            if depths[key] > MAX_DEPTH:
                raise SpecError(
                    path,
                    line,
                    f"aliases here nest more than {MAX_DEPTH} levels deep",
                    _DEPTH_HINT,
                )
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise SpecError(
                path,
                node.start_mark.line + 1,
                "an alias refers to the list or mapping that contains it",
                "an anchor (&name) can only be used after its value ends",
            )
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)


def _tag_name(tag: str) -> str:
    return "!!" + tag.removeprefix(_YAML_TAG_PREFIX) if tag.startswith(_YAML_TAG_PREFIX) else tag


def _kind(tag: str) -> str:
    return _KINDS.get(tag.removeprefix(_YAML_TAG_PREFIX), _tag_name(tag))


def _shown_node(node: Any) -> str:
    return brief(node.value) if isinstance(node.value, str) else f"this {node.id}"


def _code_point(character: Any) -> str:
    return f"U+{character:04X}" if isinstance(character, int) else brief(character)


def _cut(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
