"""The official SDKs sending the same events, configured for their best throughput.

Each SDK starts from the events `deliver_day` would map (rows, payloads and attributes, built
before the clock starts) and does its own mapping into its own event objects, kept as simple as the
documented mapping allows (docs/mparticle.md, docs/amplitude.md): the same event names, ids, times,
identities, custom attributes, revenue and `namiml_*` attributes, so requests carry the same data.
What the SDKs do not do (the ledger, reading the database, the attribute lookup) is not asked of
them.

Both SDKs are optional (the `bench` extra); `missing_sdk` says which one is absent and how to
install it, and the case is reported as skipped.
"""

import importlib.util
import itertools
import json
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from nami_pipelines.api_limits import (
    AMPLITUDE_MAX_PROPERTY_CHARS,
    MPARTICLE_MAX_EVENT_ATTRIBUTE_CHARS,
)
from nami_pipelines.destinations.outgoing import (
    DEVICE_ID,
    ENVIRONMENT,
    EVENT_TYPE,
    NAMI_USER_ID,
    OutgoingEvents,
    Row,
    epoch_ms,
    event_attributes,
)
from nami_pipelines.event_types import DEVICE_IMPRESSION, DEVICE_TRANSACTION, is_user_event
from nami_pipelines.snapshots.attributes import UserAttributes

# One event as the SDK cases take it: its row, its parsed payload and its attributes.
Item = tuple[Row, dict[str, Any], UserAttributes | None]

SDK_MODULES = {"amplitude": "amplitude", "mparticle": "mparticle"}
SDK_PACKAGES = {"amplitude": "amplitude-analytics", "mparticle": "mparticle"}
AMPLITUDE_MAX_EVENTS_PER_REQUEST = 2000
AMPLITUDE_MAX_REQUEST_BYTES = 1_000_000
MPARTICLE_MAX_BATCHES_PER_REQUEST = 100
# The SDK does not measure requests: keep each bulk call well under 256 KB by bounding events.
MPARTICLE_MAX_EVENTS_PER_REQUEST = 150
PLATFORMS = {"apple": "iOS", "google": "Android", "amazon": "Android", "web": "Web"}


def missing_sdk(api: str) -> str | None:
    """Why the official SDK for `api` cannot run here, or None when it is installed."""
    if importlib.util.find_spec(SDK_MODULES[api]) is None:
        return f"the official SDK is not installed (pip install {SDK_PACKAGES[api]})"
    return None


@dataclass(slots=True)
class SdkRun:
    """What an SDK run did, in the SDK's own words (its callbacks or exceptions)."""

    events: int = 0
    acknowledged: int = 0
    failed: int = 0
    requests: int = 0
    mapping_seconds: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


def items(outgoing: OutgoingEvents) -> Iterator[Item]:
    """The events one at a time, as an SDK's caller would hand them over."""
    return zip(outgoing.rows, outgoing.payloads, outgoing.attributes, strict=True)


# Amplitude ------------------------------------------------------------------------------------


def amplitude_flush_size(outgoing: OutgoingEvents, sample: int = 2000) -> int:
    """The largest flush size whose requests stay under Amplitude's 1 MB, at most its 2,000
    events: "flush size at the limit". A larger setting gets 413s, which make the SDK halve its
    flush size and resend, so this is its best setting for these events."""
    bodies = [
        amplitude_sdk_event(item).get_event_body()
        for item in itertools.islice(items(outgoing), sample)
    ]
    if not bodies:
        return AMPLITUDE_MAX_EVENTS_PER_REQUEST
    largest = max(len(json.dumps(body, sort_keys=True)) for body in bodies)
    average = sum(len(json.dumps(body, sort_keys=True)) for body in bodies) / len(bodies)
    # Room for the envelope, and for a run of events larger than the sample's average.
    per_event = max(average * 1.25, largest / 2)
    return max(
        1,
        min(AMPLITUDE_MAX_EVENTS_PER_REQUEST, int(0.95 * AMPLITUDE_MAX_REQUEST_BYTES / per_event)),
    )


def amplitude_sdk_event(item: Item) -> Any:
    """One event as the Amplitude SDK's `BaseEvent` (docs/amplitude.md fields, Nami user id as
    user id)."""
    from amplitude import BaseEvent

    row, payload, attributes = item
    event_id, event_type, occurred_at, _, _, app_platform_id, platform_type, user, *_ = row
    options: dict[str, Any] = {
        "user_id": user,
        "device_id": row[DEVICE_ID],
        "time": epoch_ms(occurred_at),
        "insert_id": event_id,
        "platform": PLATFORMS.get(platform_type or "", platform_type),
        "event_properties": event_attributes(
            event_type,
            platform_type,
            app_platform_id,
            payload,
            AMPLITUDE_MAX_PROPERTY_CHARS,
            False,
        ),
    }
    if event_type == DEVICE_TRANSACTION:
        quantity = payload.get("quantity", 1)
        options.update(
            price=payload["price"],
            quantity=quantity,
            revenue=payload["price"] * quantity,
            product_id=payload["sku_ref_id"],
            revenue_type="purchase",
            currency=payload["currency"],
        )
    if attributes is not None and is_user_event(event_type):
        options["user_properties"] = dict(attributes)
    return BaseEvent(event_type, **options)


def send_with_amplitude_sdk(
    outgoing: OutgoingEvents,
    *,
    api_key: str,
    server_url: str,
    flush_queue_size: int,
    timeout: float,
) -> SdkRun:
    """`track` every event, then wait until the SDK has called back for each (success or
    failure) and shut it down. The SDK batches in a consumer thread and posts from a pool of 16
    threads; `flush_interval_millis` is short so a partial last batch does not wait 10 s."""
    from amplitude import Amplitude, Config

    run = SdkRun(events=len(outgoing))
    done = threading.Event()
    lock = threading.Lock()

    def callback(event: Any, code: int, message: str | None = None) -> None:
        with lock:
            if code == 200:
                run.acknowledged += 1
            else:
                run.failed += 1
                key = f"{code} {message or ''}"[:80]
                run.errors[key] = run.errors.get(key, 0) + 1
            if run.acknowledged + run.failed >= run.events:
                done.set()

    config = Config(
        flush_queue_size=flush_queue_size,
        flush_interval_millis=200,
        flush_max_retries=3,
        server_url=server_url,
        callback=callback,
    )
    run.settings = {
        "flush_queue_size": flush_queue_size,
        "flush_interval_millis": 200,
        "flush_max_retries": 3,
        "worker_threads": 16,
    }
    client = Amplitude(api_key, config)
    started = time.perf_counter()
    events = [amplitude_sdk_event(item) for item in items(outgoing)]
    run.mapping_seconds = time.perf_counter() - started
    for event in events:
        client.track(event)
    for future in client.flush():
        if future is not None:
            future.result(timeout=timeout)
    if run.events:
        done.wait(timeout)
    client.shutdown()
    return run


# mParticle ------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def mparticle_sdk_event(item: Item) -> Any:
    """One event as the mParticle SDK's `AppEvent` or `CommerceEvent` (docs/mparticle.md fields)."""
    import mparticle

    row, payload, _ = item
    event_id, event_type, occurred_at, _, _, app_platform_id, platform_type, *_ = row
    limit = MPARTICLE_MAX_EVENT_ATTRIBUTE_CHARS
    attributes = event_attributes(event_type, platform_type, app_platform_id, payload, limit, True)
    common: dict[str, Any] = {
        "timestamp_unixtime_ms": epoch_ms(occurred_at),
        "source_message_id": event_id,
        "custom_attributes": attributes,
    }
    if event_type == DEVICE_TRANSACTION:
        quantity = payload.get("quantity", 1)
        product = mparticle.Product(
            id=payload["sku_ref_id"],
            name=payload["sku_ref_id"],
            price=payload["price"],
            quantity=quantity,
        )
        action = mparticle.ProductAction(
            action="purchase",
            total_amount=payload["price"] * quantity,
            transaction_id=payload.get("transaction_id"),
            products=[product],
        )
        return mparticle.CommerceEvent(
            product_action=action, currency_code=payload["currency"], **common
        )
    if is_user_event(event_type):
        name = event_type.removeprefix("user.").replace(".", "_")
        return mparticle.AppEvent(event_name=name, custom_event_type="transaction", **common)
    name = "impression" if event_type == DEVICE_IMPRESSION else event_type
    return mparticle.AppEvent(event_name=name, custom_event_type="other", **common)


def mparticle_sdk_batches(outgoing: OutgoingEvents) -> Iterator[Any]:
    """One `Batch` per user and environment with all the user's events of the list and the
    attributes as of the user's latest `user.*` event: simpler than our per-event cuts, and
    fewer batches, which only helps the SDK."""
    import mparticle

    users: dict[tuple[str, str | None], list[Item]] = {}
    for item in items(outgoing):
        row = item[0]
        users.setdefault((row[ENVIRONMENT], row[NAMI_USER_ID]), []).append(item)
    for (environment, user), of_user in users.items():
        latest = None
        for row, _, attributes in of_user:
            if attributes is not None and is_user_event(row[EVENT_TYPE]):
                latest = attributes
        batch = mparticle.Batch(
            environment="development" if environment == "sandbox" else "production",
            user_identities=mparticle.UserIdentities(customerid=user),
            events=[mparticle_sdk_event(item) for item in of_user],
        )
        if latest is not None:
            batch.user_attributes = {
                name: value if isinstance(value, list) else _text(value)
                for name, value in latest.items()
            }
        yield batch


def _bulk_calls(batches: Iterable[Any]) -> Iterator[list[Any]]:
    """Up to 100 batches per call, with events bounded so a call stays under 256 KB."""
    call: list[Any] = []
    events = 0
    for batch in batches:
        size = len(batch.events or ())
        if call and (
            len(call) == MPARTICLE_MAX_BATCHES_PER_REQUEST
            or events + size > MPARTICLE_MAX_EVENTS_PER_REQUEST
        ):
            yield call
            call, events = [], 0
        call.append(batch)
        events += size
    if call:
        yield call


def send_with_mparticle_sdk(
    outgoing: OutgoingEvents,
    *,
    host: str,
    key: str,
    secret: str,
    workers: int,
) -> SdkRun:
    """`EventsApi.bulk_upload_events` from `workers` threads sharing one configured client
    (its urllib3 pool sized to match), the way to run that synchronous API concurrently."""
    import mparticle

    run = SdkRun(events=len(outgoing))
    configuration = mparticle.Configuration()
    configuration.host = host
    configuration.api_key = key
    configuration.api_secret = secret
    configuration.connection_pool_size = workers
    api = mparticle.EventsApi(configuration)
    run.settings = {"workers": workers, "connection_pool_size": workers}
    lock = threading.Lock()

    def upload(call: list[Any]) -> None:
        count = sum(len(batch.events or ()) for batch in call)
        try:
            api.bulk_upload_events(call)
            outcome, error = True, None
        except mparticle.rest.ApiException as exception:
            outcome, error = False, f"HTTP {exception.status}"
        except Exception as exception:  # the SDK raises urllib3 errors as they come
            outcome, error = False, type(exception).__name__
        with lock:
            run.requests += 1
            if outcome:
                run.acknowledged += count
            else:
                run.failed += count
                run.errors[error or "?"] = run.errors.get(error or "?", 0) + 1

    started = time.perf_counter()
    calls = list(_bulk_calls(mparticle_sdk_batches(outgoing)))
    run.mapping_seconds = time.perf_counter() - started
    with ThreadPoolExecutor(max_workers=workers) as pool:
        in_flight = []
        for call in calls:
            in_flight.append(pool.submit(upload, call))
            if len(in_flight) >= workers * 4:
                in_flight.pop(0).result()
        for future in in_flight:
            future.result()
    return run
