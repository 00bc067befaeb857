"""What the demo's steps share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


@dataclass
class DemoContext:
    """Shared by the steps: the client, the work directory, and what earlier steps made."""

    client: Any
    workdir: Path
    rows: int | None = None
    echo: Callable[[str], None] = print
    artifacts: dict[str, Any] = field(default_factory=dict)
    total_seconds: float = 0.0

    def path(self, name: str) -> Path:
        return self.workdir / name
