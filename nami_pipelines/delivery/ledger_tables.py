"""The ledger's tables, in the event database beside `nami_events`: per (integration, event) what
became of it, per (integration, day, user) which run is sending that user's events now, and per
(integration, user) the attributes last sent.

An event gets its ledger row once, when its outcome is known (or when a run leaves it pending
with a reason); while it is being sent, the claim on its user is what keeps other runs off it.
A claim per user, not per event, is a tenth of the writes, and a user's events are always sent
together by one run (their attributes as of each event depend on the ones before).
"""

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

PENDING = "pending"

metadata = MetaData()

delivery_ledger = Table(
    "delivery_ledger",
    metadata,
    Column("integration", String(64), primary_key=True),
    Column("event_id", String(64), primary_key=True),
    Column("nami_user_id", String(128)),
    Column("partition_date", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("attempts", Integer, nullable=False, default=0),
    Column("first_attempt_at", DateTime(timezone=True)),
    Column("last_attempt_at", DateTime(timezone=True)),
    Column("resolved_at", DateTime(timezone=True)),
    # A claim's read of what its users' events already have: a range of users in one day.
    Index("ix_delivery_ledger_day_user", "integration", "partition_date", "nami_user_id"),
)

# The key of the events without a user: they are claimed together, as one "user".
NO_USER = ""

delivery_claims = Table(
    "delivery_claims",
    metadata,
    Column("integration", String(64), primary_key=True),
    Column("partition_date", Date, primary_key=True),
    Column("nami_user_id", String(128), primary_key=True),
    Column("claimed_by", String(128), nullable=False),
    Column("claim_expires_at", DateTime(timezone=True), nullable=False),
)

delivery_attribute_state = Table(
    "delivery_attribute_state",
    metadata,
    Column("integration", String(64), primary_key=True),
    Column("nami_user_id", String(128), primary_key=True),
    Column("attributes", Text, nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
)
