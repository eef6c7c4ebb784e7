"""`load` and `generate`: events into the table, and sample events out to a file."""

import argparse
from pathlib import Path

from nami_pipelines.commands.common import (
    CommandError,
    existing_file,
    load_file_with_progress,
    open_store,
)
from nami_pipelines.samples import write_events_ndjson
from nami_pipelines.samples.native_bodies import write_nami_bodies_ndjson


def command_load(arguments: argparse.Namespace) -> None:
    path = existing_file(arguments.file)
    summary = load_file_with_progress(path, open_store(), app_id=arguments.app_id)
    print(summary.describe())
    for line in summary.reason_lines():
        print(line)
    if summary.usable == 0:
        reasons = summary.quarantined_by_reason
        top = f" (top reason: {max(reasons, key=reasons.__getitem__)})" if reasons else ""
        raise CommandError(f"no usable line in {path}{top}")


def command_generate(arguments: argparse.Namespace) -> None:
    if arguments.users < 1 or arguments.days < 1:
        raise CommandError("--users and --days must be at least 1")
    out = Path(arguments.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if arguments.format == "nami":
        count = write_nami_bodies_ndjson(
            out,
            users=arguments.users,
            days=arguments.days,
            start=arguments.start,
            seed=arguments.seed,
            app_id=arguments.app_id,
        )
        print(f"wrote {count} Nami webhook bodies of app {arguments.app_id} to {out}")
        return
    count = write_events_ndjson(
        out,
        users=arguments.users,
        days=arguments.days,
        start=arguments.start,
        seed=arguments.seed,
        show_progress=True,
    )
    print(f"wrote {count} events for {arguments.users} users to {out}")
