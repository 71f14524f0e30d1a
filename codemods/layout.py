"""Lay out a generated ``logkit.emit(...)`` call as source text a reviewer would accept.

Values are copied verbatim from the legacy call (comments inside them included); a multi-line
value is re-indented to its new depth unless it holds a multi-line string, whose text must not
change. Indentation is relative to the statement: libcst adds the block's own indentation.
"""

from __future__ import annotations

from dataclasses import dataclass

INDENT = "    "
LINE_LIMIT = 88


@dataclass(frozen=True)
class Source:
    """An expression's source text, as copied from the legacy call."""

    text: str
    indent: int  # columns of the original argument past the statement's own indentation
    shiftable: bool = True  # False when a multi-line string makes re-indenting unsafe
    leading: tuple[str, ...] = ()  # comment lines above the argument
    comment: str | None = None  # the comment after the argument on its line

    def at(self, indent: int) -> str:
        """The text for a value placed ``indent`` columns past the statement."""
        if "\n" not in self.text or not self.shiftable or indent == self.indent:
            return self.text
        lines = self.text.split("\n")
        shift = indent - self.indent
        moved = [_shift(line, shift) for line in lines[1:]]
        return "\n".join([lines[0], *moved])


def _shift(line: str, shift: int) -> str:
    if shift > 0:
        return " " * shift + line if line.strip() else line
    spaces = len(line) - len(line.lstrip(" "))
    return line[min(spaces, -shift) :]


# A value in a payload: copied source, a nested dict (utm/seo groups, the prompt), or literal code.
Value = Source | list[tuple[str, "Value"]] | str


def _has_comments(value: Value) -> bool:
    if isinstance(value, Source):
        return bool(value.leading or value.comment)
    if isinstance(value, str):
        return False
    return any(_has_comments(v) for _, v in value)


def _entry(indent: int, text: str, value: Value) -> str:
    """One line of an exploded call or dict, with the argument's comments kept."""
    pad = " " * indent
    lines = [f"{pad}{c}" for c in value.leading] if isinstance(value, Source) else []
    comment = value.comment if isinstance(value, Source) else None
    lines.append(f"{pad}{text}," + (f"  {comment}" if comment else ""))
    return "\n".join(lines)


def _inline(value: Value) -> str:
    if isinstance(value, Source):
        return value.text
    if isinstance(value, str):
        return value
    return "{" + ", ".join(f'"{key}": {_inline(v)}' for key, v in value) + "}"


def _block(value: Value, indent: int) -> str:
    """``value`` placed at ``indent``; dicts that do not fit on their line are exploded."""
    if isinstance(value, Source):
        return value.at(indent)
    if isinstance(value, str):
        return value
    flat = _inline(value)
    if "\n" not in flat and indent + len(flat) <= LINE_LIMIT and not _has_comments(value):
        return flat
    inner = indent + len(INDENT)
    lines = [_entry(inner, f'"{key}": {_block(v, inner)}', v) for key, v in value]
    return "{\n" + "\n".join(lines) + "\n" + " " * indent + "}"


def emit_call(
    event_type: str,
    payload: list[tuple[str, Value]],
    fields: list[tuple[str, Value]],
    *,
    multiline: bool,
) -> str:
    """``logkit.emit("type", {payload}, field=value, ...)`` as source text."""
    flat = ", ".join(
        [f'"{event_type}"', _inline(payload), *(f"{k}={_inline(v)}" for k, v in fields)]
    )
    one_line = f"logkit.emit({flat})"
    commented = _has_comments(payload) or any(_has_comments(v) for _, v in fields)
    if not (multiline or commented) and "\n" not in one_line and len(one_line) <= LINE_LIMIT:
        return one_line
    step = len(INDENT)
    lines = [f'{INDENT}"{event_type}",', f"{INDENT}{_block(payload, step)},"]
    lines += [_entry(step, f"{key}={_block(value, step)}", value) for key, value in fields]
    return "logkit.emit(\n" + "\n".join(lines) + "\n)"
