#!/usr/bin/env python3
"""Parses the DOM Chromium dumps (stdin) with Python's HTML parser and prints what the
dashboard tests assert on, as JSON: every table row (its table's id or class, the
data-campaign of the section it is in, its data-* attributes and its cells' text), the text
of every element with an id, how many elements of each tag there are, and the href of every link
with an id, and every element with a data-start attribute (a Calendar bar: its data-* attributes, its <title> text and the
data-subject of the row it is in)."""
import json
import sys
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Dom(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []  # (tag, attrs, text parts)
        self.rows = []
        self.ids = {}
        self.tags = {}
        self.cells = None
        self.row = None
        self.bars = []
        self.hrefs = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag in VOID:
            return
        self.stack.append((tag, attrs, []))
        if tag == "a" and "id" in attrs:
            self.hrefs[attrs["id"]] = attrs.get("href")
        if "data-start" in attrs:
            row = next((a for t, a, _ in reversed(self.stack) if t == "tr"), {})
            self.bars.append({"attrs": {k: v for k, v in attrs.items() if k.startswith("data-")},
                              "row": row.get("data-subject"), "title": None})
        if tag == "tr":
            self.row = {"attrs": {k: v for k, v in attrs.items() if k.startswith("data-")}, "cells": []}
            table = next((a for t, a, _ in reversed(self.stack) if t == "table"), {})
            self.row["table"] = table.get("id") or table.get("class")
            section = next((a for t, a, _ in reversed(self.stack) if t == "section"), {})
            self.row["section"] = section.get("data-campaign")
            self.row["head"] = any(t == "thead" for t, _, _ in self.stack)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        while self.stack:
            t, attrs, parts = self.stack.pop()
            text = " ".join("".join(parts).split())
            if self.stack:
                self.stack[-1][2].append("".join(parts))
            if "id" in attrs:
                self.ids[attrs["id"]] = text
            if t == "title" and self.stack and "data-start" in self.stack[-1][1] and self.bars:
                self.bars[-1]["title"] = "".join(parts)
            if t in ("td", "th") and self.row is not None:
                self.row["cells"].append(text)
            if t == "tr" and self.row is not None:
                self.rows.append(self.row)
                self.row = None
            if t == tag:
                break

    def handle_data(self, data):
        if self.stack:
            self.stack[-1][2].append(data)


d = Dom()
d.feed(sys.stdin.read())
d.close()
print(json.dumps({"rows": d.rows, "ids": d.ids, "tags": d.tags, "bars": d.bars, "hrefs": d.hrefs}))
