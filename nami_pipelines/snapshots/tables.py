"""SQL tables of the daily attribute snapshots and of the state each day carries to the next."""

from sqlalchemy import (
    BigInteger,
    Boolean,
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

from nami_pipelines.snapshots.attributes import FLAG_ATTRIBUTES, LIST_ATTRIBUTES

metadata = MetaData()

# A row holds a user's attributes from its `partition_date` until the user's next row: a day
# stores only the users it recomputed, and day D's snapshot is each user's latest row with
# `partition_date <= D`. So a day's write follows its events, not the number of users.
user_attribute_snapshots = Table(
    "user_attribute_snapshots",
    metadata,
    # User first: "the latest row of this user up to day D" is one seek in the primary key.
    Column("nami_user_id", String(128), primary_key=True),
    Column("partition_date", Date, primary_key=True),
    Column("external_id", String(512)),
    *(Column(name, Text, nullable=False) for name in LIST_ATTRIBUTES),
    *(Column(name, Boolean, nullable=False) for name in FLAG_ATTRIBUTES),
    # The carry-over state (see snapshots.state) as JSON, so the next day starts from it.
    Column("carry_state", Text, nullable=False),
    # Earliest listed expiration after the day's end: the day the attributes change with no event.
    Column("next_expiration", DateTime(timezone=True)),
    Index("ix_user_attribute_snapshots_day", "partition_date"),
    Index("ix_user_attribute_snapshots_expiry", "next_expiration"),
)

user_attribute_snapshot_days = Table(
    "user_attribute_snapshot_days",
    metadata,
    Column("partition_date", Date, primary_key=True),
    # The day's counts, kept here because the day's rows alone do not hold every user.
    Column("users", Integer, nullable=False),
    Column("active_subscribers", Integer, nullable=False),
    Column("in_trial", Integer, nullable=False),
    Column("in_grace_period", Integer, nullable=False),
    Column("former_subscribers", Integer, nullable=False),
    # Every event with occurred_at <= the day's end and loaded_seq <= this was included.
    Column("basis_loaded_seq", BigInteger, nullable=False),
    Column("mode", String(16), nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False),
)
