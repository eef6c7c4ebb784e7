"""A day sent by several worker processes at once: the same events, once, as by one."""

from datetime import timedelta

import pandas as pd

from nami_pipelines.delivery.ledger import PENDING
from nami_pipelines.delivery.shards import deliver_day_with_workers, with_workers
from nami_pipelines.destinations.outcomes import ACCEPTED
from nami_pipelines.destinations.selection import event_filter
from nami_pipelines.events.tables import nami_events
from nami_pipelines.snapshots.daily import day_end
from nami_pipelines_tests.conftest import AMPLITUDE_KEYS, MPARTICLE_KEYS
from nami_pipelines_tests.delivery.test_deliver_day import (
    expected_event_ids,
    received_ids,
    world,  # noqa: F401  (the fixture)
)


def test_user_spans_cover_every_event_of_the_day_once(world):  # noqa: F811
    store, day = world["store"], world["days"][1]
    window = {"occurred_after": day_end(day - timedelta(days=1)), "occurred_until": day_end(day)}
    amplitude, ios = world["integrations"]["amplitude_prod"], world["integrations"]["ios_feed"]
    columns = [column.name for column in nami_events.columns]

    def read(**span) -> pd.DataFrame:
        parts = store.read_rows_by_user(**window, app_id=amplitude.app_id, **span)
        return pd.DataFrame([row for part in parts for row in part], columns=columns)

    everything = read()
    spans = store.user_spans(event_filter(amplitude), **window, shares=(1, 1, 1))
    parts = [read(users=span) for span in spans]
    assert len(spans) == 3 and all(len(part) > len(everything) / 6 for part in parts)
    # Each span says how many events it holds: the planner's counts are the rows read.
    assert [span.events for span in spans] == [len(part) for part in parts]
    ids = [event_id for part in parts for event_id in part["event_id"]]
    assert sorted(ids) == sorted(everything["event_id"])
    users = [set(part["nami_user_id"].dropna()) for part in parts]
    assert not (users[0] & users[1]) and not (users[1] & users[2])
    # Shares of 3 and 1: the first span holds about three quarters of the events.
    uneven = store.user_spans(event_filter(amplitude), **window, shares=(3, 1))
    assert 2 * uneven[1].events < uneven[0].events < 4 * uneven[1].events
    # A feed of one platform counts only that platform's events.
    apple = store.user_spans(event_filter(ios), **window, shares=(1, 1, 1))
    assert sum(span.events for span in apple) == int((everything["platform_type"] == "apple").sum())


def test_spans_planned_from_a_sample_still_cover_the_day(world):  # noqa: F811
    store, day = world["store"], world["days"][1]
    window = {"occurred_after": day_end(day - timedelta(days=1)), "occurred_until": day_end(day)}
    amplitude = world["integrations"]["amplitude_prod"]
    parts = store.read_rows_by_user(**window, app_id=amplitude.app_id)
    everything = sorted(row[0] for part in parts for row in part)
    spans = store.user_spans(event_filter(amplitude), **window, shares=(1, 1), every=2)
    read = [
        row[0]
        for span in spans
        for part in store.read_rows_by_user(**window, app_id=amplitude.app_id, users=span)
        for row in part
    ]
    # Cut from every other event, the spans still hold each event once; their counts are the
    # sample's, doubled.
    assert sorted(read) == everything
    assert all(span.events % 2 == 0 for span in spans)
    assert abs(sum(span.events for span in spans) - len(everything)) <= len(everything) / 4


def test_two_workers_send_every_selected_event_once(world):  # noqa: F811
    emulator, ledger = world["emulator"], world["ledger"]
    for name in ("ios_feed", "amplitude_prod"):
        integration = with_workers(world["integrations"][name], 2)
        reports = [
            deliver_day_with_workers(
                store=world["store"],
                repository=world["repository"],
                ledger=ledger,
                integration=integration,
                day=day,
                min_events_per_worker=1,
            )
            for day in world["days"]
        ]
        entries = ledger.entries(name)
        accepted = {row["event_id"] for row in entries if row["status"] == ACCEPTED}
        assert {row["event_id"] for row in entries} == expected_event_ids(world, name)
        assert not [row for row in entries if row["status"] == PENDING]
        assert sum(report.accepted for report in reports) == len(accepted) > 20
        assert sum(report.attribute_updates for report in reports) > 0
        api, credential = (
            ("mparticle", MPARTICLE_KEYS[name][0])
            if integration.type == "mparticle"
            else ("amplitude", AMPLITUDE_KEYS[name])
        )
        assert sorted(received_ids(emulator, api, credential)) == sorted(accepted)
        # Each request counted once, though this process sent several spans with one client.
        answered = emulator.stats()[api]["per_credential"][credential]["requests"]
        assert sum(report.requests for report in reports) == answered
        again = deliver_day_with_workers(
            store=world["store"],
            repository=world["repository"],
            ledger=ledger,
            integration=integration,
            day=world["days"][0],
            min_events_per_worker=1,
        )
        assert again.accepted == 0 and again.already_done == again.selected > 0
