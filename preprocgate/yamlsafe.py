"""YAML for untrusted specs: the safe loader, plus budgets that keep a hostile file from exhausting memory or stack.

``yaml.SafeLoader`` builds no arbitrary objects but still shares aliased nodes: ``a: &x [*y, *y, ...]`` nested ten
deep (a "billion laughs") composes in microseconds and expands to billions of nodes in any walk that treats the
tree as a tree (interpolation, validation, error line lookup). So the composed graph is measured first, counting
every alias as the full subtree it stands for, and refused over :data:`MAX_NODES`; nesting is capped at
:data:`MAX_DEPTH` while composing (PyYAML composes recursively, so a deep file would otherwise end in a
RecursionError). A key given twice in one mapping is an error: silently keeping the last one hides typos such
as two ``torch:`` variants.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_BYTES = 1 << 20  # a spec is a page of YAML; a megabyte is already absurd
MAX_NODES = 100_000  # nodes after alias expansion
MAX_DEPTH = 64  # nesting of mappings and sequences


class YamlProblem(Exception):
    """Why the text is refused, and the line (1-based) where, if known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message, self.line = message, line


class _BudgetLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses nesting deeper than MAX_DEPTH."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:  # type: ignore[override]
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlProblem(f"nested more than {MAX_DEPTH} levels deep", mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def compose(text: str) -> yaml.Node | None:
    """The node graph of ``text``, within the byte, depth and expanded-size budgets and without duplicate keys."""
    if len(text) > MAX_BYTES:
        raise YamlProblem(f"{len(text)} characters, over the {MAX_BYTES} a spec may have")
    loader = _BudgetLoader(text)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    if node is not None:
        _check(node)
    return node


def construct(node: yaml.Node | None) -> Any:
    """Python data from a node graph already checked by :func:`compose` (plain dicts, lists and scalars)."""
    if node is None:
        return None
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check(root: yaml.Node) -> None:
    """Expanded size within MAX_NODES (memoised per node, so the check itself stays linear) and no duplicate keys."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # being measured: meeting one again means an alias inside its own anchor
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if not children_done:
            if id(node) in open_nodes:
                raise YamlProblem("an alias refers to the node that contains it (a recursive structure)", _line(node))
            open_nodes.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        open_nodes.discard(id(node))
        size = 1 + sum(sizes.get(id(child), 1) for child in children)
        if size > MAX_NODES:
            raise YamlProblem(
                f"expands to more than {MAX_NODES} nodes (aliases counted in full): refused as a possible alias bomb",
                _line(node),
            )
        sizes[id(node)] = size
        if isinstance(node, yaml.MappingNode):
            _check_keys(node)


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_keys(node: yaml.MappingNode) -> None:
    seen: dict[tuple[str, Any], int] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            continue
        line = key.start_mark.line + 1
        if (key.tag, key.value) in seen:
            raise YamlProblem(f"key {key.value!r} given twice (lines {seen[key.tag, key.value]} and {line})", line)
        seen[key.tag, key.value] = line
