"""The `nami_events` landing table, observed: it is loaded outside Dagster (webhooks, CLI)."""

import dagster as dg

from nami_pipelines.defs.resources import EventStoreResource

QUARANTINE_PREVIEW_ROWS = 20


@dg.observable_source_asset(
    name="nami_events",
    group_name="events",
    description="Nami subscription and paywall events, one row per event (docs/input.md).",
)
def nami_events(event_store: EventStoreResource) -> dg.ObserveResult:
    store = event_store.store()
    max_seq = store.max_loaded_seq()
    quarantined = store.quarantined_lines(limit=QUARANTINE_PREVIEW_ROWS)
    preview = quarantined[["source", "line_number", "reason"]].to_markdown(index=False)
    return dg.ObserveResult(
        data_version=dg.DataVersion(str(max_seq)),
        metadata={
            "rows": dg.MetadataValue.int(store.count_events()),
            "max_loaded_seq": dg.MetadataValue.int(max_seq),
            "quarantined": dg.MetadataValue.int(store.count_quarantined()),
            "quarantine_preview": dg.MetadataValue.md(preview or "nothing quarantined"),
            # Types Nami emits that no destination takes (session starts and ends, purchase
            # updates): acknowledged and counted here, never quarantined.
            "not_sent_by_type": dg.MetadataValue.json(store.unsent_counts()),
        },
    )


@dg.definitions
def events_definitions() -> dg.Definitions:
    return dg.Definitions(assets=[nami_events])
