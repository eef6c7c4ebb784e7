"""The ledger's tables, in the event database beside `nami_events`: per (integration, event) what
became of it, and per (integration, user) the attributes last sent."""

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
    Column("claimed_by", String(128)),
    Column("claim_expires_at", DateTime(timezone=True)),
    Column("first_attempt_at", DateTime(timezone=True)),
    Column("last_attempt_at", DateTime(timezone=True)),
    Column("resolved_at", DateTime(timezone=True)),
    Index("ix_delivery_ledger_partition", "integration", "partition_date", "status"),
)

delivery_attribute_state = Table(
    "delivery_attribute_state",
    metadata,
    Column("integration", String(64), primary_key=True),
    Column("nami_user_id", String(128), primary_key=True),
    Column("attributes", Text, nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
)
