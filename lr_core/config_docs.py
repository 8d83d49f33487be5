"""Every config key with its type, default and meaning, read from the dataclasses themselves.

The meaning of a field is the trailing ``# comment`` on the line that defines it (the project's
convention for config dataclasses), so the documentation lives next to the field and cannot
drift into a second file::

    @dataclass
    class OptimConfig:
        lr: float = 2e-5  # peak learning rate (after warmup)

>>> keys = {k.key: k for k in config_keys()}
>>> keys["optim.lr"].type, keys["optim.lr"].default
('float', 2e-05)
>>> bool(keys["model.lora.r"].doc)
True

:func:`config_keys` walks :class:`~lr_core.config.ExperimentConfig` and the dataclasses nested
in it (e.g. :class:`~lr_core.backbone.LoraSettings`); :func:`undocumented_fields` lists the
fields without a comment (a test keeps it empty). ``lr config keys`` prints the table.
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import textwrap
import tokenize
import typing
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["KeyDoc", "field_comments", "config_keys", "undocumented_fields", "nested_dataclasses"]


@dataclass(frozen=True)
class KeyDoc:
    key: str  # dotted key as overrides spell it, e.g. model.lora.r
    type: str  # the annotation as written in the source
    default: object  # the default value (default_factory called)
    doc: str  # the field's trailing comment; "" when it has none

    @property
    def default_text(self) -> str:
        return "None" if self.default is None else repr(self.default) if isinstance(self.default, str) else str(self.default)


@lru_cache(maxsize=None)
def field_comments(cls: type) -> dict[str, str]:
    """``{field name: trailing comment}`` for the annotated fields in ``cls``'s own source.

    A field spread over several lines may carry its comment on any of them (the first wins).
    """
    source = textwrap.dedent(inspect.getsource(cls))
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments.setdefault(tok.start[0], tok.string.lstrip("#").strip())
    (node,) = [n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)]
    out: dict[str, str] = {}
    for stmt in node.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            lines = range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1)
            out[stmt.target.id] = next((comments[i] for i in lines if comments.get(i)), "")
    return out


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def _source_type(cls: type, name: str) -> str:
    ann = cls.__dict__.get("__annotations__", {}).get(name)
    if ann is None:  # inherited field
        for base in cls.__mro__[1:]:
            ann = base.__dict__.get("__annotations__", {}).get(name)
            if ann is not None:
                break
    return ann if isinstance(ann, str) else getattr(ann, "__name__", str(ann))


def nested_dataclasses(root: type | None = None) -> list[type]:
    """``root`` (default ExperimentConfig) and every dataclass reachable through its fields."""
    if root is None:
        from lr_core.config import ExperimentConfig

        root = ExperimentConfig
    seen: list[type] = []
    stack = [root]
    while stack:
        cls = stack.pop(0)
        if cls in seen:
            continue
        seen.append(cls)
        hints = typing.get_type_hints(cls)
        stack += [hints[f.name] for f in dataclasses.fields(cls) if dataclasses.is_dataclass(hints[f.name])]
    return seen


def config_keys(root: type | None = None, prefix: str = "") -> list[KeyDoc]:
    """Every leaf key of the config (nested dataclasses flattened to dotted keys), in source order."""
    if root is None:
        from lr_core.config import ExperimentConfig

        root = ExperimentConfig
    hints = typing.get_type_hints(root)
    docs = _all_comments(root)
    out: list[KeyDoc] = []
    for f in dataclasses.fields(root):
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hints[f.name]):
            out += config_keys(hints[f.name], prefix=key + ".")
        else:
            out.append(KeyDoc(key, _source_type(root, f.name), _default(f), docs.get(f.name, "")))
    return out


def _all_comments(cls: type) -> dict[str, str]:
    merged: dict[str, str] = {}
    for base in reversed([c for c in cls.__mro__ if dataclasses.is_dataclass(c)]):
        merged.update(field_comments(base))
    return merged


def undocumented_fields(root: type | None = None) -> list[str]:
    """``Class.field`` for every field of the config dataclasses without a trailing comment."""
    missing = []
    for cls in nested_dataclasses(root):
        docs = _all_comments(cls)
        missing += [f"{cls.__name__}.{f.name}" for f in dataclasses.fields(cls) if not docs.get(f.name)]
    return missing
