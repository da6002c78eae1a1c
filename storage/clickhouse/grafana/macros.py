"""Expand a panel's SQL the way Grafana and its ClickHouse plugin do before it runs.

Two steps, in Grafana's order:

1. Template variables (Grafana's front end, ``templateSrv.replace`` called by the plugin's
   ``applyTemplateVariables``): ``${name}`` takes the plugin's own format (a list becomes
   ``'a','b'``, a single value is inserted as it is), ``${name:sqlstring}`` quotes each
   value as an SQL string (``'`` doubled) and joins them with commas,
   ``${name:singlequote}`` quotes each value with ``'`` escaped by a backslash.
2. The plugin's back-end macros (``pkg/macros/macros.go`` of grafana-clickhouse-datasource,
   v4), with the dashboard's time range and the panel's interval:

   - ``$__timeFilter(col)`` -> ``col >= toDateTime(<from s>) AND col <= toDateTime(<to s>)``
   - ``$__timeFilter_ms(col)`` -> the same with ``fromUnixTimestamp64Milli(<ms>)``
   - ``$__fromTime`` / ``$__toTime`` -> ``toDateTime(<s>)``;
     ``$__fromTime_ms`` / ``$__toTime_ms`` -> ``fromUnixTimestamp64Milli(<ms>)``
   - ``$__timeInterval(col)`` ->
     ``toStartOfInterval(toDateTime(col), INTERVAL <interval s> second)``
   - ``$__interval_s`` -> the interval in whole seconds (at least 1)

Anything else that starts with ``$`` is refused (:class:`MacroError`): an unknown ``$__``
macro, a variable the context does not define, a format this module does not implement, or
a ``$`` left over after expansion. The dashboards are only allowed what is expanded here,
so the SQL a test runs is the SQL Grafana would run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = ["MACROS", "MacroError", "QueryContext", "expand", "expand_variables"]


class MacroError(ValueError):
    """A macro or template variable that cannot be expanded exactly as Grafana would."""


@dataclass(frozen=True)
class QueryContext:
    """What Grafana knows when it runs a panel: time range, interval and variable values.

    ``start`` and ``end`` are the dashboard's time picker (naive means UTC);
    ``interval_seconds`` is the panel's ``$__interval`` (range / max data points, rounded
    by Grafana); ``variables`` maps a variable name to its current value, a list for a
    multi-value variable.
    """

    start: datetime
    end: datetime
    interval_seconds: float
    variables: Mapping[str, str | Sequence[str]] = field(default_factory=dict)

    @property
    def start_ms(self) -> int:
        """The range's start in Unix milliseconds."""
        return _millis(self.start)

    @property
    def end_ms(self) -> int:
        """The range's end in Unix milliseconds."""
        return _millis(self.end)


Macro = Callable[[QueryContext, "list[str] | None"], str]


def _millis(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def _seconds(ms: int) -> int:
    # Go's time.Unix() truncates toward the earlier second
    return ms // 1000


def _one_argument(name: str, args: list[str]) -> str:
    if len(args) != 1 or not args[0]:
        raise MacroError(f"$__{name} expects 1 argument, got {len(args)}")
    return args[0]


def _no_argument(name: str, args: list[str] | None) -> None:
    if args is not None:
        raise MacroError(f"$__{name} takes no arguments")


def _time_filter(ctx: QueryContext, args: list[str] | None) -> str:
    column = _one_argument("timeFilter", args or [])
    return (
        f"{column} >= toDateTime({_seconds(ctx.start_ms)}) "
        f"AND {column} <= toDateTime({_seconds(ctx.end_ms)})"
    )


def _time_filter_ms(ctx: QueryContext, args: list[str] | None) -> str:
    column = _one_argument("timeFilter_ms", args or [])
    return (
        f"{column} >= fromUnixTimestamp64Milli({ctx.start_ms}) "
        f"AND {column} <= fromUnixTimestamp64Milli({ctx.end_ms})"
    )


def _interval(ctx: QueryContext) -> int:
    return int(max(ctx.interval_seconds, 1.0))


def _time_interval(ctx: QueryContext, args: list[str] | None) -> str:
    column = _one_argument("timeInterval", args or [])
    return f"toStartOfInterval(toDateTime({column}), INTERVAL {_interval(ctx)} second)"


def _constant(name: str, render: Callable[[QueryContext], str]) -> Macro:
    def macro(ctx: QueryContext, args: list[str] | None) -> str:
        _no_argument(name, args)
        return render(ctx)

    return macro


MACROS: dict[str, Macro] = {
    "timeFilter": _time_filter,
    "timeFilter_ms": _time_filter_ms,
    "timeInterval": _time_interval,
    "fromTime": _constant("fromTime", lambda c: f"toDateTime({_seconds(c.start_ms)})"),
    "toTime": _constant("toTime", lambda c: f"toDateTime({_seconds(c.end_ms)})"),
    "fromTime_ms": _constant("fromTime_ms", lambda c: f"fromUnixTimestamp64Milli({c.start_ms})"),
    "toTime_ms": _constant("toTime_ms", lambda c: f"fromUnixTimestamp64Milli({c.end_ms})"),
    "interval_s": _constant("interval_s", lambda c: str(_interval(c))),
}

_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?::(?P<format>\w+))?\}|\$(?P<bare>[A-Za-z]\w*)")
_MACRO = re.compile(r"\$__(?P<name>\w+)")


def _format(name: str, value: str | Sequence[str], fmt: str | None) -> str:
    values = [value] if isinstance(value, str) else list(value)
    if fmt is None:  # the plugin's format(): lists quoted and joined, scalars as they are
        return value if isinstance(value, str) else "'" + "','".join(values) + "'"
    if fmt == "sqlstring":
        return ",".join("'" + v.replace("'", "''") + "'" for v in values)
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    raise MacroError(f"${{{name}:{fmt}}}: format {fmt!r} is not supported")


def expand_variables(sql: str, variables: Mapping[str, str | Sequence[str]]) -> str:
    """Replace ``${name}``, ``${name:format}`` and ``$name`` with the variables' values."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("name") or match.group("bare")
        if name.startswith("__"):
            return match.group(0)  # a plugin macro: the back end expands it later
        if name not in variables:
            raise MacroError(f"template variable ${name} is not defined")
        return _format(name, variables[name], match.group("format"))

    return _VARIABLE.sub(replace, sql)


def _arguments(sql: str, open_at: int) -> tuple[list[str], int]:
    """Split the parenthesised arguments starting at ``open_at``; return them and the end."""
    depth, start, args = 0, open_at + 1, []
    for index in range(open_at, len(sql)):
        char = sql[index]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[start:index].strip())
                return args, index + 1
        elif char == "," and depth == 1:
            args.append(sql[start:index].strip())
            start = index + 1
    raise MacroError(f"unbalanced parentheses after {sql[:open_at]!r}")


def expand(sql: str, ctx: QueryContext) -> str:
    """Return ``sql`` with template variables, then the plugin's macros, expanded."""
    text = expand_variables(sql, ctx.variables)
    out: list[str] = []
    position = 0
    for match in _MACRO.finditer(text):
        if match.start() < position:  # inside the arguments of a macro already expanded
            raise MacroError("nested macros are not expanded by the plugin")
        name = match.group("name")
        if name not in MACROS:
            raise MacroError(f"unknown macro $__{name}")
        out.append(text[position : match.start()])
        end = match.end()
        args: list[str] | None = None
        if end < len(text) and text[end] == "(":
            args, end = _arguments(text, end)
        out.append(MACROS[name](ctx, args))
        position = end
    out.append(text[position:])
    result = "".join(out)
    if "$" in result:
        raise MacroError(f"unexpanded '$' left in the query: {result!r}")
    return result
