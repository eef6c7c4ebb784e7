"""`python -m benchmarks.webhook_server`: the webhook receiver in a process of its own, committing
in groups (as `nami-pipelines receive` does) or one request per transaction (the plain way), so
the benchmark compares the two on the same stack and database."""

import argparse

import uvicorn

from nami_pipelines.events.store import EventStore
from nami_pipelines.receiver.app import build_receiver_app
from nami_pipelines.receiver.apps import webhook_apps
from nami_pipelines.receiver.committers import GroupCommitter, PerRequestCommitter


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["group", "plain"], required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--app", required=True)
    parser.add_argument("--port", type=int, required=True)
    options = parser.parse_args()
    store = EventStore(options.db)
    apps = webhook_apps({"webhooks": [{"app_id": options.app}]})  # NAMI_WEBHOOK_SECRET
    committer = GroupCommitter(store) if options.mode == "group" else PerRequestCommitter(store)
    app = build_receiver_app(store, apps, committer)
    uvicorn.run(app, host="127.0.0.1", port=options.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
