"""Reading the heartbeat an instance's bot writes in its data directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson


class HeartbeatFiles:
    def __init__(self, data_dir: Path | str) -> None:
        self.data_dir = Path(data_dir)

    def __call__(self, instance_id: str) -> dict[str, Any] | None:
        path = self.data_dir / "instances" / instance_id / "heartbeat.json"
        try:
            data = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None
