"""The comments after an entry in status.yaml: ruamel hangs them on the entry's last key.

When `statusd set` adds a key at the end of an entry, the comment lines that
introduce the next entry must stay before that next entry, not move with the key.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken

__all__ = ["attach_tail", "detach_tail"]


def _last_slot(node: Any) -> tuple[CommentedMap, Any] | None:
    """The deepest last key of a block mapping: where YAML hangs the comments after it."""
    found = None
    while isinstance(node, CommentedMap) and len(node) and not node.fa.flow_style():
        key = list(node)[-1]
        found = (node, key)
        node = node[key]
    return found


def detach_tail(node: Any) -> str | None:
    """Take the comment lines hanging after `node`'s last key (they belong to what follows it)."""
    slot = _last_slot(node)
    if slot is None:
        return None
    items = slot[0].ca.items.get(slot[1])
    if not items or len(items) < 3 or items[2] is None:
        return None
    head, _, rest = items[2].value.partition("\n")
    if not rest:
        return None
    if head.strip():
        items[2].value = head + "\n"  # the end-of-line comment stays with its key
    else:
        items[2] = None
    return str(rest)


def attach_tail(node: Any, tail: str | None) -> None:
    """Hang `tail` (from detach_tail) after `node`'s last key again."""
    slot = _last_slot(node)
    if not tail or slot is None:
        return
    items = slot[0].ca.items.setdefault(slot[1], [None, None, None, None])
    if items[2] is None:
        items[2] = CommentToken("\n" + tail, CommentMark(0), None)
    else:
        items[2].value = items[2].value.rstrip("\n") + "\n" + tail
