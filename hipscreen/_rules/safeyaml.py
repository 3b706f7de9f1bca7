"""Reading rule files safely: bounded, alias-free YAML.

Plain files only, within the size budgets, no anchors or aliases, no collections nested too deep,
no duplicate keys.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from hipscreen._limits import MAX_RULE_DATA_BYTES, MAX_RULE_FILE_BYTES, MAX_YAML_DEPTH
from hipscreen._rules.problems import Collector

_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's loader when PyYAML was built with it (about four times faster), else PyYAML's."""


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """A YAML loader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    mapping: dict[Any, Any] = loader.construct_mapping(node)
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _check_events(raw: bytes) -> None:
    """Refuse anchors and aliases, and collections nested more than ``MAX_YAML_DEPTH`` deep.

    Runs on the parser's event stream, before anything is composed: a 526-byte file of nested
    aliases expands to billions of nodes ("billion laughs"), and composing recurses per level.

    Raises:
        yaml.YAMLError: naming the line and column.
    """
    depth = 0
    for event in yaml.parse(raw, Loader=_SafeLoader):
        mark: Any = event.start_mark
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None, None, "YAML anchors and aliases (&name, *name) are not allowed", mark
            )
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"collections nested more than {MAX_YAML_DEPTH} levels deep", mark
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def read_yaml(path: Path, root: Path, out: Collector, budget: list[int]) -> tuple[Any, bytes]:
    """One YAML file, within ``MAX_RULE_FILE_BYTES`` and what is left of ``budget[0]`` bytes.

    A rule file must be a regular file: a FIFO, a device or a socket is refused by its type
    before any byte is read (opened without blocking, so a FIFO cannot hang the load), and the
    sizes are checked with ``fstat`` first: the file that is too large is the one named.
    """
    name = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        out.add(name, "", "", f"cannot read file: {error.strerror or error}")
        return None, b""
    with open(fd, "rb") as file:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device or special file"
            if stat.S_ISDIR(st.st_mode):
                kind = "a folder"
            out.add(name, "", "", f"not a regular file ({kind}); rule files must be plain files")
            return None, b""
        if st.st_size > MAX_RULE_FILE_BYTES:
            out.add(
                name,
                "",
                "",
                f"the file is {st.st_size:,} bytes, larger than {MAX_RULE_FILE_BYTES:,} "
                "bytes (the limit); it was not read",
            )
            return None, b""
        if st.st_size > budget[0]:
            total = MAX_RULE_DATA_BYTES - budget[0] + st.st_size
            out.add(
                name,
                "",
                "",
                f"with this file ({st.st_size:,} bytes) the rule files together are {total:,} "
                f"bytes, larger than {MAX_RULE_DATA_BYTES:,} bytes (the limit); it was not read",
            )
            return None, b""
        limit = min(MAX_RULE_FILE_BYTES, budget[0])
        try:
            raw = file.read(limit + 1)
        except OSError as error:
            out.add(name, "", "", f"cannot read file: {error.strerror or error}")
            return None, b""
    if len(raw) > limit:  # it grew while being read
        out.add(name, "", "", f"the file grew past {limit:,} bytes while it was read")
        return None, b""
    budget[0] -= len(raw)
    try:
        _check_events(raw)
        return yaml.load(raw, Loader=_UniqueKeyLoader), raw
    except yaml.YAMLError as error:
        out.add(name, "", "", f"not valid YAML: {error}".replace("\n", " "))
    except (ValueError, OverflowError, RecursionError) as error:  # e.g. an integer of 5,000 digits
        out.add(name, "", "", f"not valid YAML: {type(error).__name__}: {error}")
    return None, raw
