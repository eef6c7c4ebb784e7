"""`historical_after_days` decides, per feed, which days go to mParticle's historical endpoint."""

from datetime import UTC, datetime, timedelta

from nami_pipelines.config import parse_integrations
from nami_pipelines.delivery.ledger import DeliveryLedger
from nami_pipelines.events.loader import load_ndjson_file
from nami_pipelines.samples import PRODUCTION_APP_ID, write_events_ndjson
from nami_pipelines_tests.conftest import integrations_document
from nami_pipelines_tests.destinations.delivery_world import DeliveryWorld


def test_a_feed_sends_days_older_than_its_historical_age_to_the_historical_endpoint(
    event_store, tmp_path, fresh_emulator, credentials_env
):
    today = datetime.now(UTC).date()
    older, younger = today - timedelta(days=8), today - timedelta(days=2)
    for name, day, seed in (("older", older, 5), ("younger", younger, 6)):
        source = tmp_path / f"{name}.ndjson"
        write_events_ndjson(source, users=20, days=1, start=day, seed=seed)
        load_ndjson_file(source, event_store)
    document = integrations_document(fresh_emulator.url, PRODUCTION_APP_ID)
    [feed] = [item for item in document["integrations"] if item["name"] == "ios_feed"]
    feed["historical_after_days"] = 5
    integration = next(i for i in parse_integrations(document) if i.name == "ios_feed")

    sent_to: dict[str, set[bool]] = {}
    for name, day in (("older", older), ("younger", younger)):
        fresh_emulator.reset()
        world = DeliveryWorld(event_store, DeliveryLedger(event_store.engine), fresh_emulator, day)
        report = world.deliver(integration)
        assert report.accepted > 0
        records = [r for r in fresh_emulator.received("mparticle") if "event" in r]
        assert len({r["event"]["data"]["source_message_id"] for r in records}) == report.accepted
        sent_to[name] = {r["historical"] for r in records}

    # 8 days old with `historical_after_days: 5`: historical (the default of 30 would not be).
    assert sent_to == {"older": {True}, "younger": {False}}
