"""One script being migrated: its text, tokens and syntax tree, the edits
decided so far and what the report will say.

Positions are (line, column) with 1-based lines and 0-based *character*
columns, as `tokenize` gives them; `ast` columns (UTF-8 bytes) are converted.
An edit replaces the text between two positions; nothing else is touched, so
comments and formatting survive.
"""

import ast
import io
import itertools
import re
import tokenize
from dataclasses import dataclass

# A comment holding this marks a line as checked by a person: no report for it.
REVIEWED_MARK = "nlp4keras: ok"


@dataclass(frozen=True)
class Change:
    """A rewrite done (or, without --write, proposed)."""

    line: int
    kind: str
    message: str


@dataclass(frozen=True)
class Issue:
    """A line that needs a person: `what` on it, and the `hint` why / what instead."""

    line: int
    reason: str
    hint: str
    what: str = ""

    @property
    def message(self):
        return f"{self.what} — {self.hint}" if self.what else self.hint


@dataclass(frozen=True)
class _Edit:
    start: tuple
    end: tuple
    text: str
    change: Change


class Source:
    def __init__(self, text):
        """Raises SyntaxError when `text` is not Python 3."""
        if re.search("\r(?!\n)", text):
            raise SyntaxError("carriage returns without line feeds (old Mac line endings)")
        self.text = text
        self.tree = ast.parse(text)
        self.lines = io.StringIO(text).readlines()
        self._line_offsets = list(
            itertools.accumulate((len(line) for line in self.lines), initial=0)
        )
        try:
            self.tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
        except tokenize.TokenError as error:
            raise SyntaxError(str(error)) from error
        self._token_index = {tok.start: i for i, tok in enumerate(self.tokens)}
        self.nodes = list(ast.walk(self.tree))  # every node, walked once
        self.parents = {child: node for node in self.nodes for child in ast.iter_child_nodes(node)}
        self.reviewed_lines = {
            tok.start[0]
            for tok in self.tokens
            if tok.type == tokenize.COMMENT and REVIEWED_MARK in tok.string
        }
        self._edits = []
        self.issues = []

    # ---------------------------------------------------------- positions
    def _char_col(self, line, byte_col):
        if line > len(self.lines):
            return byte_col
        return len(self.lines[line - 1].encode("utf-8")[:byte_col].decode("utf-8", "replace"))

    def start(self, node):
        return (node.lineno, self._char_col(node.lineno, node.col_offset))

    def end(self, node):
        return (node.end_lineno, self._char_col(node.end_lineno, node.end_col_offset))

    def segment(self, node):
        """The source text of `node`."""
        return self._text_between(self.start(node), self.end(node))

    # ------------------------------------------------------------- tokens
    def token_at(self, pos):
        index = self._token_index.get(pos)
        return None if index is None else self.tokens[index]

    def tokens_from(self, pos):
        """The tokens starting at `pos` onwards."""
        index = self._token_index.get(pos)
        return (
            iter(()) if index is None else (self.tokens[i] for i in range(index, len(self.tokens)))
        )

    def name_token(self, pos, name):
        """The NAME token `name` starting at `pos`, else None."""
        tok = self.token_at(pos)
        return tok if tok is not None and tok.type == tokenize.NAME and tok.string == name else None

    def attribute_name_token(self, node):
        """The token of `node.attr` in an ast.Attribute (its last token)."""
        line, col = self.end(node)
        return self.name_token((line, col - len(node.attr)), node.attr)

    def dotted_name_span(self, pos):
        """(start, end, text) of the dotted name (`a.b.c`) starting at `pos`."""
        parts, end = [], None
        for tok in self.tokens_from(pos):
            expect_name = len(parts) % 2 == 0
            if expect_name and tok.type == tokenize.NAME:
                parts.append(tok.string)
            elif not expect_name and tok.type == tokenize.OP and tok.string == ".":
                parts.append(".")
            else:
                break
            end = tok.end
        if not parts or parts[-1] == ".":
            return None
        return pos, end, "".join(parts)

    def from_import_module_span(self, node):
        """(start, end, text) of the module name in `from MODULE import ...`."""
        tokens = list(itertools.islice(self.tokens_from(self.start(node)), 2))
        if len(tokens) < 2 or tokens[0].string != "from":
            return None
        return self.dotted_name_span(tokens[1].start)

    # ------------------------------------------------------ edits, report
    def replace(self, start, end, text, line, kind, message):
        """Replace the text between `start` and `end`; `message` says what changed."""
        self._edits.append(_Edit(start, end, text, Change(line, kind, message)))

    def alone_on_its_lines(self, node):
        """True when no other code shares the lines of statement `node`."""
        start, end = self.start(node), self.end(node)
        before = self.lines[start[0] - 1][: start[1]]
        after = self.lines[end[0] - 1][end[1] :].strip()
        return not before.strip() and (not after or after.startswith("#"))

    def _siblings(self, node):
        parent = self.parents.get(node)
        for field in ("body", "orelse", "finalbody"):
            body = getattr(parent, field, None)
            if isinstance(body, list) and node in body:
                return body
        return []

    def _blank(self, line):
        return not 0 < line <= len(self.lines) or not self.lines[line - 1].strip()

    def remove_statement(self, node, kind, message):
        """Deletes the lines of statement `node` (with its comment); a blank
        line after it goes too when one is before it. False when it cannot:
        other code on its lines, or the only statement of its block."""
        if len(self._siblings(node)) < 2 or not self.alone_on_its_lines(node):
            return False
        last = node.end_lineno
        if self._blank(node.lineno - 1) and self._blank(last + 1) and last < len(self.lines):
            last += 1
        self.replace((node.lineno, 0), (last + 1, 0), "", node.lineno, kind, message)
        return True

    def issue(self, line, reason, hint, what=""):
        """Reports `what` on `line`; the same hint twice on a line is said once."""
        if line in self.reviewed_lines:
            return
        for i, known in enumerate(self.issues):
            if (known.line, known.reason, known.hint) == (line, reason, hint):
                if what and what not in known.what.split(", "):
                    whats = ", ".join(filter(None, [known.what, what]))
                    self.issues[i] = Issue(line, reason, hint, whats)
                return
        self.issues.append(Issue(line, reason, hint, what))

    def _kept_edits(self):
        """The edits in text order; an edit overlapping an earlier one is dropped."""
        kept = []
        for edit in sorted(self._edits, key=lambda e: (e.start, e.end)):
            if kept and edit.start < kept[-1].end:
                continue
            if edit.text != self._text_between(edit.start, edit.end):
                kept.append(edit)
        return kept

    def _offset(self, pos):
        line, col = pos
        return self._line_offsets[min(line - 1, len(self.lines))] + col

    def _text_between(self, start, end):
        return self.text[self._offset(start) : self._offset(end)]

    def result(self):
        """(new text, changes in line order, issues in line order)."""
        edits = self._kept_edits()
        text = self.text
        for edit in reversed(edits):
            text = text[: self._offset(edit.start)] + edit.text + text[self._offset(edit.end) :]
        changes = sorted({edit.change for edit in edits}, key=lambda c: (c.line, c.message))
        issues = sorted(self.issues, key=lambda i: (i.line, i.reason, i.message))
        return text, changes, issues
