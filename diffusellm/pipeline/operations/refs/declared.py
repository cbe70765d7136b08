"""Phase 4, references the code cannot see: entry points that name a definition in packaging files.

`[project.scripts]` in pyproject.toml and `[options.entry_points]` in setup.cfg name callables as
`module:attr`. Installed commands are generated from them when the environment is built, so a
rename or move that left them behind would break the command with no test noticing, and editing
them would need the environment rebuilt; such an operation is refused, naming the line.
"""

from __future__ import annotations

import re

from diffusellm.errors import OperationError
from diffusellm.pipeline.paths import UnsafePathError
from diffusellm.pipeline.project import Project, Target

DECLARATION_FILES = ("pyproject.toml", "setup.cfg")


def declared_entry_points(project: Project, target: Target) -> list[str]:
    """`file:line` of each entry point naming `target` (or an attribute of it) in packaging files."""
    pattern = re.compile(
        rf"(?<![\w.]){re.escape(target.module)}\s*:\s*{re.escape(target.names[0])}(?![\w])")
    found: list[str] = []
    for rel in DECLARATION_FILES:
        if not (project.root / rel).is_file():
            continue
        try:
            text = project.read(rel)
        except (OperationError, UnsafePathError):
            continue
        found.extend(f"{rel}:{n}" for n, line in enumerate(text.splitlines(), start=1)
                     if pattern.search(line))
    return found


def refuse_declared(project: Project, target: Target, doing: str) -> None:
    """Refuse changing a definition that an installed command is generated from."""
    places = declared_entry_points(project, target)
    if places:
        raise OperationError(
            f"cannot {doing} {target.qualname}: it is an entry point declared at "
            + ", ".join(places[:5]),
            hint="installed commands are generated from that line; change it and the code together "
                 "by hand, then reinstall; nothing was changed",
        )
