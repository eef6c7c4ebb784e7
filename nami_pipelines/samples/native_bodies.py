"""Sample events written as Nami's own webhook bodies, one per line (`generate --format nami`):
what a receiver or `load --app-id` takes, for trying the front door without a Nami account."""

import json
from datetime import date
from pathlib import Path

from nami_pipelines.events.nami_bodies import body_from_record
from nami_pipelines.samples.generator import generate_events


def write_nami_bodies_ndjson(
    path: Path, *, users: int, days: int, start: date, seed: int, app_id: str
) -> int:
    """Write the generated events of `app_id` as Nami's bodies (a webhook belongs to one app, so
    the other apps' events are left out); returns how many were written."""
    count = 0
    with Path(path).open("w", encoding="utf-8", newline="\n") as out:
        for record in generate_events(users, days, start, seed):
            if record["app_id"] == app_id:
                out.write(json.dumps(body_from_record(record), separators=(",", ":")) + "\n")
                count += 1
    return count
