"""A tiny DOM reader over html.parser: find elements by id or class and read their text."""

from __future__ import annotations

from html.parser import HTMLParser

_VOID = frozenset({"area", "base", "br", "col", "hr", "img", "input", "link", "meta", "source"})


class Dom(HTMLParser):
    """Elements as (tag, attrs, all text inside), enough to query by id and class."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str], list[str]]] = []
        self._open: list[int] = []
        self.scripts = 0
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        self.elements.append((tag, {k: v or "" for k, v in attrs}, []))
        if tag not in _VOID:
            self._open.append(len(self.elements) - 1)

    def handle_endtag(self, tag: str) -> None:
        while self._open and self.elements[self._open.pop()][0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        for index in self._open:  # text counts for every enclosing element
            self.elements[index][2].append(data)

    def by_id(self, ident: str) -> tuple[dict[str, str], str] | None:
        for _tag, attrs, text in self.elements:
            if attrs.get("id") == ident:
                return attrs, "".join(text)
        return None

    def by_class(self, cls: str) -> list[tuple[dict[str, str], str]]:
        return [
            (attrs, "".join(text))
            for _tag, attrs, text in self.elements
            if cls in attrs.get("class", "").split()
        ]
