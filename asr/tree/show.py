"""The human-readable dump of a tree (``asr build-tree --show``)."""

from __future__ import annotations

from asr.tree.tree import PDF_CLASS_KEY, Tree

INDENT = "  "


def key_name(tree: Tree, key: int) -> str:
    """``pdf-class``, ``phone`` (the central position) or ``ctx[-1]``, ``ctx[+1]``, ... relative to it."""
    if key == PDF_CLASS_KEY:
        return "pdf-class"
    offset = key - tree.central_position
    return "phone" if offset == 0 else f"ctx[{offset:+d}]"


def format_questions(tree: Tree) -> list[str]:
    names = {i: n for n, i in tree.phones.items()}
    names[0] = "<edge>"
    lines = [f"questions ({len(tree.questions)} phone sets, {len(tree.class_questions)} pdf-class sets):"]
    for q, values in enumerate(tree.questions):
        lines.append(f"{INDENT}q{q}: {{{' '.join(names.get(v, str(v)) for v in values)}}}")
    for q, values in enumerate(tree.class_questions):
        lines.append(f"{INDENT}c{q}: pdf classes {{{' '.join(map(str, values))}}}")
    return lines


def format_subtree(tree: Tree, node: int, depth: int) -> list[str]:
    """Lines of the subtree at ``node``: each question, then its yes and no branches indented."""
    lines: list[str] = []
    stack = [(node, depth, "")]
    while stack:
        n, d, label = stack.pop()
        entry = tree.nodes[n]
        pad = INDENT * d + label
        if len(entry) == 1:
            lines.append(f"{pad}leaf {entry[0]} ({tree.leaf_counts[entry[0]]:.0f} frames)")
            continue
        key, question, yes, no = entry
        lines.append(f"{pad}{key_name(tree, key)} in {'c' if key == PDF_CLASS_KEY else 'q'}{question}?")
        stack += [(no, d + 1, "no:  "), (yes, d + 1, "yes: ")]
    return lines


def format_tree(tree: Tree, where: str = "tree") -> str:
    """The whole dump: a summary line, the questions and every root's tree."""
    names = {i: n for n, i in tree.phones.items()}
    frames = sum(tree.leaf_counts)
    lines = [
        f"{where}: context width {tree.context_width} (central position {tree.central_position}), "
        f"{len(tree.roots)} roots, {tree.num_leaves} leaves, {frames:.0f} frames"
    ]
    lines += format_questions(tree)
    for r, root in enumerate(tree.roots):
        phones = " ".join(names.get(p, str(p)) for p in root.phones)
        lines.append(f"root {r}: {{{phones}}} pdf classes {root.pdf_classes}")
        lines += format_subtree(tree, root.node, 1)
    return "\n".join(lines) + "\n"
