# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One shape and one rendering for every refusal and finding of the collection.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

Validation, the Cilium preflight, the interconnect rules and the Kosmos plan all say the same
four things about a problem: a stable code, the clusters (and group) involved, the field of the
inventory to look at, and the fix. They build a ``Problem`` and print it with ``render``, so a
user reads every refusal the same way and a tool can match on the code.
"""

from __future__ import annotations

import dataclasses
import typing as t

ERROR = "error"
WARNING = "warning"
INFO = "info"


@dataclasses.dataclass(frozen=True)
class Problem:
    """One finding: a stable code, who is involved, what is wrong and how to fix it."""

    code: str
    message: str
    fix: str
    clusters: t.Tuple[str, ...] = ()
    group: t.Optional[str] = None
    field: str = ""
    severity: str = ERROR

    def as_dict(self) -> t.Dict[str, t.Any]:
        return {"code": self.code, "severity": self.severity, "field": self.field, "clusters": list(self.clusters),
                "group": self.group, "message": self.message, "fix": self.fix}

    @property
    def where(self) -> str:
        who = ", ".join(self.clusters) or "-"
        return "group %s: %s" % (self.group, who) if self.group else who


def problem(code: str, message: str, fix: str, clusters: t.Iterable[str] = (), group: t.Optional[str] = None,
            field: str = "", severity: str = ERROR) -> Problem:
    """A Problem whose clusters are sorted and listed once, whatever order the caller found them in."""
    return Problem(code, message, fix, tuple(sorted(set(clusters))), group, field, severity)


def from_dict(entry: t.Mapping[str, t.Any]) -> Problem:
    return problem(entry["code"], entry["message"], entry.get("fix") or "", entry.get("clusters") or (),
                   entry.get("group"), entry.get("field") or "", entry.get("severity") or ERROR)


def render(problems: t.Iterable[Problem]) -> t.List[str]:
    """Two lines per problem: severity, code, who and what; then the field and the fix."""
    lines = []
    for item in problems:
        lines.append("%-7s %s [%s] %s" % (item.severity.upper(), item.code, item.where, item.message))
        if item.severity != INFO:
            lines.append("        field: %s; fix: %s" % (item.field or "-", item.fix or "-"))
    return lines


def refusal(what: str, problems: t.Sequence[Problem]) -> str:
    """The message of a refused run: what refused, how many problems, that nothing changed, each problem."""
    count = len([p for p in problems if p.severity == ERROR]) or len(problems)
    head = "%s refused (%d problem%s); nothing was changed." % (what, count, "" if count == 1 else "s")
    return "\n".join([head] + render(problems))
