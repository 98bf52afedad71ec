"""What `nlp4keras migrate` says about a script, and the summary line."""

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Report:
    changes: list = field(default_factory=list)
    issues: list = field(default_factory=list)

    @property
    def needs_person(self):
        return bool(self.issues)

    def person_lines(self):
        return sorted({issue.line for issue in self.issues})

    def lines(self, name):
        """The report as `name:LINE: ...` lines, in line order; a hint said
        before in the file is referred to by its line."""
        items = [(c.line, 0, c.message) for c in self.changes]
        first_line = {}
        for issue in self.issues:
            key = (issue.reason, issue.hint)
            if issue.what and key in first_line:
                text = f"{issue.what} — as at line {first_line[key]}"
            else:
                first_line.setdefault(key, issue.line)
                text = issue.message
            items.append((issue.line, 1, f"needs a person: {text}"))
        return [f"{name}:{line}: {text}" for line, _, text in sorted(items)]


@dataclass
class Summary:
    files: int = 0
    changed: int = 0
    changes: Counter = field(default_factory=Counter)
    person_files: int = 0
    person_lines: int = 0
    reasons: Counter = field(default_factory=Counter)
    errors: int = 0

    def add(self, report, changed):
        self.files += 1
        self.changed += bool(changed)
        self.changes.update(c.kind for c in report.changes)
        self.person_files += report.needs_person
        self.person_lines += len(report.person_lines())
        self.reasons.update(i.reason for i in report.issues)

    def line(self, written):
        verb = "changed" if written else "to change"
        text = (
            f"{self.files} file(s): {self.changed} {verb} ({sum(self.changes.values())} "
            f"change(s)), {self.person_files} with {self.person_lines} line(s) that need a person"
        )
        if self.errors:
            text += f", {self.errors} error(s)"
        return text

    def detail(self):
        """Counts by kind of change and by reason a person is needed."""
        parts = []
        if self.changes:
            parts.append("changes: " + _counts(self.changes))
        if self.reasons:
            parts.append("needs a person: " + _counts(self.reasons))
        return parts


def _counts(counter):
    return ", ".join(f"{name} {n}" for name, n in sorted(counter.items(), key=lambda x: -x[1]))
