"""Nami's own webhook bodies loaded as rows: the columns each body gives, the snapshot computed
from them, and files that mix them with the project's envelope."""

import json
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from nami_pipelines.cli import main
from nami_pipelines.events.loader import load_ndjson_file
from nami_pipelines.events.store import EventStore
from nami_pipelines.events.tables import nami_events, nami_events_quarantine
from nami_pipelines.snapshots.compute import snapshot_from_store
from nami_pipelines_tests.builders import EventLog
from nami_pipelines_tests.events.nami_body_samples import (
    APP_ID,
    DEVICE_ID,
    EXTERNAL_ID,
    PLATFORM_ID,
    USER_ID,
    ZERO,
    renewed_body,
    transaction_body,
    write_bodies,
    zero_body,
)

ROW_COLUMNS = [c.name for c in nami_events.columns if c.name not in ("loaded_seq", "payload")]


def stored_rows(store: EventStore) -> dict[str, dict]:
    with store.engine.connect() as connection:
        rows = connection.execute(sa.select(nami_events).order_by(nami_events.c.loaded_seq))
        return {row["event_id"]: dict(row) for row in rows.mappings()}


def columns(row: dict) -> dict:
    values = {name: row[name] for name in ROW_COLUMNS}
    values["occurred_at"] = row["occurred_at"].replace(tzinfo=UTC).isoformat()
    return values


def test_the_documented_body_becomes_a_row_with_its_payload_as_received(event_store, tmp_path):
    body = renewed_body()
    source = write_bodies(tmp_path / "bodies.ndjson", [body])
    summary = load_ndjson_file(source, event_store, app_id=APP_ID)
    assert (summary.loaded, summary.quarantined) == (1, 0)
    row = stored_rows(event_store)["9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"]
    assert columns(row) == {
        "event_id": "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        "event_type": "user.subscription.renewed",
        "occurred_at": "2026-11-24T08:15:02.331018+00:00",
        "app_id": APP_ID,
        "app_platform_id": PLATFORM_ID,  # the user's only device
        "platform_type": "apple",
        "nami_user_id": USER_ID,
        "external_id": EXTERNAL_ID,  # the `external_id` entry, not `original_transaction_id`
        "device_id": None,
        "environment": "production",
    }
    assert json.loads(row["payload"]) == body


def test_the_snapshot_reads_a_bodys_top_level_state(event_store, tmp_path):
    load_ndjson_file(
        write_bodies(tmp_path / "b.ndjson", [renewed_body()]), event_store, app_id=APP_ID
    )
    (user,) = snapshot_from_store(event_store, "2026-11-25T00:00:00Z").to_dict("records")
    assert user == {
        "nami_user_id": USER_ID,
        "external_id": EXTERNAL_ID,
        "namiml_active_entitlements": ["premium"],
        "namiml_active_skus": ["premium_monthly"],
        "namiml_device_ids": [DEVICE_ID],
        "namiml_device_platforms": [PLATFORM_ID],
        "namiml_former_subscriber": False,
        "namiml_in_grace_period": False,
        "namiml_in_trial_period": False,
        "namiml_in_intro_offer_period": False,
    }
    (expired,) = snapshot_from_store(event_store, "2026-12-25T00:00:00Z").to_dict("records")
    assert expired["namiml_active_entitlements"] == []
    assert expired["namiml_former_subscriber"] is True  # it was paid, not a trial


def test_all_zero_uuids_are_stored_but_an_all_zero_external_id_is_no_external_id(
    event_store, tmp_path
):
    load_ndjson_file(write_bodies(tmp_path / "z.ndjson", [zero_body()]), event_store, app_id=APP_ID)
    row = stored_rows(event_store)[ZERO]
    assert (row["nami_user_id"], row["app_platform_id"], row["external_id"]) == (ZERO, ZERO, None)
    (user,) = snapshot_from_store(event_store, "2026-11-25T00:00:00Z").to_dict("records")
    assert user["external_id"] is None
    assert user["namiml_device_ids"] == [ZERO]


def test_external_ids_without_an_external_id_entry(event_store, tmp_path):
    only_transaction = [{"key": "original_transaction_id", "type": "x", "value": "2000000777"}]
    bodies = [
        renewed_body(id="no-external", external_ids=only_transaction),
        renewed_body(id="top-level", external_ids=only_transaction, external_id="top-level-id"),
    ]
    load_ndjson_file(write_bodies(tmp_path / "x.ndjson", bodies), event_store, app_id=APP_ID)
    rows = stored_rows(event_store)
    assert rows["no-external"]["external_id"] is None
    assert rows["top-level"]["external_id"] == "top-level-id"


def test_device_bodies_give_their_device_platform_and_environment(event_store, tmp_path):
    bodies = [
        transaction_body(),
        transaction_body(id="tx-sandbox", purchase_env="sandbox", app_env="sandbox"),
        transaction_body(
            id="tx-nested",
            device_id=None,
            app_platform_id=None,
            event_platform=None,
            app_env="staging",
            device={"id": "device-nested", "platform": {"id": "p-9", "platform_type": "google"}},
        ),
    ]
    load_ndjson_file(write_bodies(tmp_path / "d.ndjson", bodies), event_store, app_id=APP_ID)
    rows = stored_rows(event_store)
    first = rows["7e3f1a2b-0c4d-4e5f-8a6b-9c0d1e2f3a4b"]
    assert (first["device_id"], first["app_platform_id"], first["platform_type"]) == (
        DEVICE_ID,
        PLATFORM_ID,
        "apple",
    )
    assert first["environment"] == "production"
    assert rows["tx-sandbox"]["environment"] == "sandbox"
    nested = rows["tx-nested"]
    assert (nested["device_id"], nested["app_platform_id"], nested["platform_type"]) == (
        "device-nested",
        "p-9",
        "google",
    )
    assert nested["environment"] == "sandbox"  # an app_env other than production


def test_one_file_mixes_envelope_lines_and_bodies_told_apart_per_line(event_store, tmp_path):
    log = EventLog()
    envelope = log.user_event("u-envelope", "user.subscription.purchased", "2026-11-20T10:00:00Z")
    lines = [json.dumps(envelope), json.dumps(renewed_body())]
    source = write_bodies(tmp_path / "mixed.ndjson", lines)
    without_app = load_ndjson_file(source, event_store)
    assert (without_app.loaded, without_app.quarantined) == (1, 1)
    assert without_app.quarantined_by_reason == {
        "a Nami webhook body needs the app it belongs to (load --app-id)": 1
    }
    with_app = load_ndjson_file(source, event_store, app_id=APP_ID)
    assert (with_app.loaded, with_app.duplicates) == (1, 1)
    rows = stored_rows(event_store)
    assert rows[envelope["event_id"]]["app_id"] == envelope["app_id"]  # its own app is kept
    assert rows["9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"]["app_id"] == APP_ID


def test_types_we_do_not_send_are_counted_once_and_never_quarantined(event_store, tmp_path):
    bodies = [
        {"id": "s1", "event_type": "device.session.start", "created_date": "2026-11-24T08:00:00Z"},
        {"id": "s2", "event_type": "device.session.end", "created_date": "2026-11-24T08:09:00Z"},
        {"id": "s3", "event_type": "device.session.start", "created_date": "2026-11-24T09:00:00Z"},
        {"id": "p1", "event_type": "purchase.updated", "created_date": "2026-11-24T09:00:00Z"},
    ]
    source = write_bodies(tmp_path / "unsent.ndjson", bodies)
    first = load_ndjson_file(source, event_store, app_id=APP_ID)
    assert (first.loaded, first.quarantined) == (0, 0)
    assert first.unsent_by_type == {
        "device.session.start": 2,
        "device.session.end": 1,
        "purchase.updated": 1,
    }
    load_ndjson_file(source, event_store, app_id=APP_ID)  # Nami retries: counted once
    assert event_store.unsent_counts() == first.unsent_by_type
    assert event_store.count_quarantined() == 0 and event_store.count_events() == 0


def test_reloading_a_bad_file_keeps_each_line_once_with_its_event_id(
    event_store, tmp_path, monkeypatch
):
    bodies = [
        renewed_body(id="bad-type", event_type="user.subscription.exploded"),
        renewed_body(id="bad-time", created_date="yesterday"),
        "{not json",
    ]
    source = write_bodies(tmp_path / "bad.ndjson", bodies)
    first = load_ndjson_file(source, event_store, app_id=APP_ID)
    second = load_ndjson_file(source, event_store, app_id=APP_ID)
    # The same file named another way (relative, through "..") is the same file.
    monkeypatch.chdir(tmp_path)
    third = load_ndjson_file(
        Path("../" + tmp_path.name + "/bad.ndjson"), event_store, app_id=APP_ID
    )
    assert first.quarantined == second.quarantined == third.quarantined == 3
    with event_store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(nami_events_quarantine.c.event_id, nami_events_quarantine.c.line_number)
        ).all()
    assert sorted(rows, key=lambda row: row[1]) == [("bad-type", 1), ("bad-time", 2), (None, 3)]
    assert event_store.quarantined_by_reason() == {
        "invalid JSON: Expecting property name enclosed in double quotes at column 2": 1,
        "occurred_at is not an ISO 8601 timestamp: 'yesterday'": 1,
        "unknown event_type 'user.subscription.exploded'": 1,
    }


def test_load_prints_reasons_and_a_file_with_no_usable_line_fails(
    database_url, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("NAMI_EVENTS_DB_URL", database_url)
    bad = write_bodies(tmp_path / "bad.ndjson", ["{not json", renewed_body(created_date="soon")])
    assert main(["load", "--app-id", APP_ID, str(bad)]) != 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        "loaded 0, duplicates 0, quarantined 2",
        "  quarantined 1: invalid JSON: Expecting property name enclosed in double quotes at "
        "column 2",
        "  quarantined 1: occurred_at is not an ISO 8601 timestamp: 'soon'",
    ]
    assert captured.err.strip().startswith(f"nami-pipelines load: no usable line in {bad}")
    assert len(captured.err.strip().splitlines()) == 1
    good = write_bodies(tmp_path / "good.ndjson", [renewed_body()])
    assert main(["load", "--app-id", APP_ID, str(good)]) == 0
    assert capsys.readouterr().out.strip() == "loaded 1, duplicates 0, quarantined 0"


def test_generated_nami_bodies_load_to_the_same_rows_and_snapshot(tmp_path, capsys):
    arguments = ["--users", "30", "--days", "3", "--start", "2026-02-01", "--seed", "4"]
    envelope, native = tmp_path / "envelope.ndjson", tmp_path / "native.ndjson"
    assert main(["generate", *arguments, "--out", str(envelope)]) == 0
    app = "a7e1c5f0-2d3b-4c6a-9e8f-1b2c3d4e5f60"
    assert main(["generate", *arguments, "--format", "nami", "--out", str(native)]) == 0
    assert f"Nami webhook bodies of app {app}" in capsys.readouterr().out
    first_body = json.loads(native.read_text().splitlines()[0])
    assert {"id", "created_date", "user_id"} <= set(first_body) and "payload" not in first_body
    from_envelope = EventStore(f"sqlite:///{tmp_path / 'envelope.db'}")
    from_native = EventStore(f"sqlite:///{tmp_path / 'native.db'}")
    load_ndjson_file(envelope, from_envelope)
    summary = load_ndjson_file(native, from_native, app_id=app)
    assert summary.quarantined == 0 and summary.loaded > 50
    expected = {
        event_id: columns(row)
        for event_id, row in stored_rows(from_envelope).items()
        if row["app_id"] == app
    }
    assert {event_id: columns(row) for event_id, row in stored_rows(from_native).items()} == (
        expected
    )
    at = datetime(2026, 2, 3, 12, tzinfo=UTC).isoformat()
    production_users = {row["nami_user_id"] for row in stored_rows(from_native).values()}
    snapshot = snapshot_from_store(from_envelope, at)
    snapshot = snapshot[snapshot["nami_user_id"].isin(production_users)].reset_index(drop=True)
    assert snapshot_from_store(from_native, at).to_dict("records") == snapshot.to_dict("records")


def test_both_mappings_send_the_same_requests_for_bodies_as_for_envelope_lines(
    tmp_path, credentials_env
):
    from nami_pipelines.config import parse_integrations
    from nami_pipelines.delivery.clients import client_for
    from nami_pipelines.delivery.preview import preview_day
    from nami_pipelines.events.nami_bodies import body_from_record
    from nami_pipelines.samples import PRODUCTION_APP_ID, generate_events
    from nami_pipelines.snapshots.repository import SnapshotRepository
    from nami_pipelines_tests.conftest import integrations_document

    records = [r for r in generate_events(40, 2, datetime(2026, 2, 1).date(), 8)]
    production = [r for r in records if r["app_id"] == PRODUCTION_APP_ID]
    envelope = write_bodies(tmp_path / "envelope.ndjson", production)
    native = write_bodies(tmp_path / "native.ndjson", [body_from_record(r) for r in production])
    stores = [EventStore(f"sqlite:///{tmp_path / name}.db") for name in ("envelope", "native")]
    load_ndjson_file(envelope, stores[0])
    load_ndjson_file(native, stores[1], app_id=PRODUCTION_APP_ID)
    integrations = parse_integrations(
        integrations_document("http://127.0.0.1:9", PRODUCTION_APP_ID)
    )
    now = datetime(2026, 2, 3, 12, tzinfo=UTC)

    def requests_of(store: EventStore, integration) -> list[bytes]:
        return list(
            preview_day(
                store=store,
                repository=SnapshotRepository(store.engine),
                integration=integration,
                client=client_for(integration),
                day=datetime(2026, 2, 1).date(),
                now=now,
            )
        )

    for integration in integrations:  # two mParticle feeds and an Amplitude project
        from_envelope = requests_of(stores[0], integration)
        assert from_envelope, integration.name
        assert requests_of(stores[1], integration) == from_envelope, integration.name


def test_the_nami_events_observation_counts_types_we_do_not_send(event_store, tmp_path):
    import dagster as dg

    from nami_pipelines.defs.events.assets import nami_events as nami_events_asset
    from nami_pipelines.defs.resources import EventStoreResource

    bodies = [
        {"id": "s1", "event_type": "device.session.start", "created_date": "2026-11-24T08:00:00Z"},
        {"id": "s2", "event_type": "device.session.start", "created_date": "2026-11-24T08:00:00Z"},
        {"id": "p1", "event_type": "purchase.updated", "created_date": "2026-11-24T09:00:00Z"},
        renewed_body(),
    ]
    load_ndjson_file(write_bodies(tmp_path / "b.ndjson", bodies), event_store, app_id=APP_ID)
    resource = EventStoreResource(database_url=event_store.url)
    definitions = dg.Definitions(assets=[nami_events_asset], resources={"event_store": resource})
    result = definitions.resolve_implicit_global_asset_job_def().execute_in_process()
    (observation,) = [
        event.event_specific_data.asset_observation
        for event in result.all_events
        if event.event_type_value == "ASSET_OBSERVATION"
    ]
    metadata = observation.metadata
    assert metadata["not_sent_by_type"].value == {"device.session.start": 2, "purchase.updated": 1}
    assert metadata["rows"].value == 1 and metadata["quarantined"].value == 0


def test_a_database_from_before_quarantine_keys_gets_them_and_keeps_its_rows(
    database_url, tmp_path
):
    engine = sa.create_engine(database_url)
    earlier = sa.MetaData()  # the quarantine table as earlier versions made it: no key
    old_table = sa.Table(
        "nami_events_quarantine",
        earlier,
        *(
            sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in nami_events_quarantine.columns
            if c.name != "content_key"
        ),
    )
    earlier.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            old_table.insert().values(
                source="old.ndjson",
                line_number=1,
                reason="invalid JSON",
                raw_line="{",
                quarantined_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )
    engine.dispose()
    store = EventStore(database_url)
    source = write_bodies(tmp_path / "bad.ndjson", ["{still bad"])
    load_ndjson_file(source, store)
    load_ndjson_file(source, store)
    assert store.count_quarantined() == 2
    store.engine.dispose()
