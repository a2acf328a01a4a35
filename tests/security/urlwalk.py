"""Every URL the project serves, as a concrete path and the HTTP methods its view answers.

Walks `get_resolver().url_patterns` recursively and fills every path converter or regex group
with a sample value derived from the pattern itself (sre parse tree), then checks that the
sample resolves back to the same pattern, so nothing is ever tested under the wrong view.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404

try:
    from re import _constants as sre_constants
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_constants
    import sre_parse

FUNCTION_VIEW_METHODS = ("GET", "POST")


@dataclass(frozen=True)
class Endpoint:
    path: str
    route: str
    name: str
    methods: tuple[str, ...]
    function_view: bool

    def __str__(self) -> str:
        return f"{self.path} ({self.name or self.route})"


def _sample(tree, minimal: bool) -> str:
    out = []
    for op, arg in tree:
        if op is sre_constants.LITERAL:
            out.append(chr(arg))
        elif op is sre_constants.NOT_LITERAL:
            out.append("2" if chr(arg) == "1" else "1")
        elif op is sre_constants.ANY:
            out.append("1")
        elif op is sre_constants.IN:
            out.append(_sample_class(arg))
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            low, _high, sub = arg
            count = low if minimal else max(low, 1)
            out.append(_sample(sub, minimal) * count)
        elif op is sre_constants.SUBPATTERN:
            out.append(_sample(arg[-1], minimal))
        elif op is sre_constants.BRANCH:
            out.append(_sample(arg[1][0], minimal))
        elif op is sre_constants.AT:
            continue
        else:
            raise ValueError(f"no sample for regex op {op}")
    return "".join(out)


def _sample_class(items) -> str:
    if items and items[0][0] is sre_constants.NEGATE:
        excluded = {chr(a) for op, a in items[1:] if op is sre_constants.LITERAL}
        return "1" if "1" not in excluded else "a"
    op, arg = items[0]
    if op is sre_constants.LITERAL:
        return chr(arg)
    if op is sre_constants.RANGE:
        low, high = arg
        return "1" if low <= ord("1") <= high else chr(low)
    if op is sre_constants.CATEGORY:
        return "a" if arg is sre_constants.CATEGORY_WORD else "1"
    raise ValueError(f"no sample for character class {items}")


def sample_path(regexes: list[str], minimal: bool) -> str:
    return "/" + "".join(_sample(sre_parse.parse(r), minimal) for r in regexes)


def _methods(callback) -> tuple[tuple[str, ...], bool]:
    actions = getattr(callback, "actions", None)
    if actions:
        return tuple(sorted({m.upper() for m in actions} | {"OPTIONS"})), False
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view_class is not None:
        names = [
            m.upper()
            for m in view_class.http_method_names
            if m != "head" and callable(getattr(view_class, m, None))
        ]
        return tuple(sorted(names)), False
    return FUNCTION_VIEW_METHODS, True


def _walk(patterns, regexes, routes, names):
    for entry in patterns:
        regex = entry.pattern.regex.pattern
        route = str(entry.pattern)
        if isinstance(entry, URLResolver):
            namespace = [entry.namespace] if entry.namespace else []
            yield from _walk(
                entry.url_patterns, [*regexes, regex], [*routes, route], names + namespace
            )
        elif isinstance(entry, URLPattern):
            yield (
                entry,
                [*regexes, regex],
                "".join([*routes, route]),
                ":".join([*names, entry.name]) if entry.name else "",
            )


def endpoints() -> list[Endpoint]:
    """Every HTTP URL pattern of the project, each with a path that resolves to it."""
    found = []
    for entry, regexes, route, name in _walk(get_resolver().url_patterns, [], [], []):
        for minimal in (True, False):
            path = sample_path(regexes, minimal)
            try:
                match = resolve(path)
            except Resolver404:
                continue
            if match.func is entry.callback and match.url_name == entry.name:
                break
        else:
            raise AssertionError(f"cannot build a path for {route!r}: tried {path!r}")
        methods, function_view = _methods(entry.callback)
        found.append(Endpoint(path, route, name, methods, function_view))
    return found


def websocket_routes(patterns) -> list[tuple[str, str]]:
    """(path, route) of every websocket route, with sample values as for HTTP."""
    result = []
    for entry in patterns:
        regex = entry.pattern.regex.pattern
        result.append((sample_path([regex], minimal=False), str(entry.pattern)))
    return result
