"""The webserver's GraphQL API, called the way the Dagster UI calls it.

The mutations are the UI's own (`LaunchPartitionBackfill` with the parameters its asset
partitions dialog sends, `StartSensor` from the sensor switch), so a test that passes here
exercises what a person clicking in the UI would.
"""

from datetime import date, timedelta
from typing import Any

import requests

REQUEST_TIMEOUT_SECONDS = 30.0
# What the UI adds to every launch it makes (`tagsWithUIExecutionTags`).
UI_EXECUTION_TAGS = [{"key": "dagster/from_ui", "value": "true"}]
BACKFILL_TAG = "dagster/backfill"
FINISHED_RUN_STATUSES = frozenset({"SUCCESS", "FAILURE", "CANCELED"})


class GraphQLError(AssertionError):
    """The API answered with errors, or with a result type that is an error."""


WORKSPACE_QUERY = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation {
            name
            repositories {
              name
              sensors { name }
            }
          }
          ... on PythonError { message }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""

DAEMON_HEALTH_QUERY = """
query DaemonHealth {
  instance {
    daemonHealth {
      allDaemonStatuses { daemonType required healthy }
    }
  }
}
"""

# The UI's LAUNCH_PARTITION_BACKFILL_MUTATION (ui-core/src/instance/backfill/BackfillUtils.tsx).
LAUNCH_PARTITION_BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId launchedRunIds }
    ... on PartitionSetNotFoundError { message }
    ... on PartitionKeysNotFoundError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
    ... on UnauthorizedError { message }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message stack }
  }
}
"""

BACKFILL_QUERY = """
query Backfill($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill {
      id
      status
      numPartitions
      partitionNames
      isAssetBackfill
      error { message }
    }
    ... on PythonError { message }
    ... on BackfillNotFoundError { message }
  }
}
"""

RUNS_QUERY = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs {
      results {
        runId
        status
        jobName
        tags { key value }
        assetSelection { path }
        stepStats { stepKey status startTime endTime }
      }
    }
    ... on PythonError { message }
  }
}
"""

# The UI's StartSensor mutation (the switch on the Automation page).
START_SENSOR = """
mutation StartSensor($sensorSelector: SensorSelector!) {
  startSensor(sensorSelector: $sensorSelector) {
    __typename
    ... on Sensor { id sensorState { status } }
    ... on SensorNotFoundError { message }
    ... on UnauthorizedError { message }
    ... on PythonError { message }
  }
}
"""

# The UI's SetSensorCursorMutation (the sensor page's "Edit cursor" dialog).
SET_SENSOR_CURSOR = """
mutation SetSensorCursorMutation($sensorSelector: SensorSelector!, $cursor: String) {
  setSensorCursor(sensorSelector: $sensorSelector, cursor: $cursor) {
    __typename
    ... on Sensor {
      sensorState {
        status
        typeSpecificData { ... on SensorData { lastCursor } }
      }
    }
    ... on SensorNotFoundError { message }
    ... on UnauthorizedError { message }
    ... on PythonError { message }
  }
}
"""

SENSOR_QUERY = """
query Sensor($sensorSelector: SensorSelector!) {
  sensorOrError(sensorSelector: $sensorSelector) {
    __typename
    ... on Sensor {
      sensorState {
        status
        typeSpecificData { ... on SensorData { lastCursor } }
        ticks(limit: 10) { status runIds skipReason cursor error { message } }
      }
    }
    ... on SensorNotFoundError { message }
    ... on PythonError { message }
  }
}
"""

ASSET_PARTITIONS_QUERY = """
query AssetPartitions($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    __typename
    ... on AssetNode {
      assetPartitionStatuses {
        __typename
        ... on TimePartitionStatuses { ranges { startKey endKey status } }
      }
    }
  }
}
"""

# What the UI's Deployment > Concurrency page reads: the pools' settings and each pool's limit.
POOLS_QUERY = """
query Pools {
  instance {
    poolConfig { poolGranularity defaultPoolLimit }
    concurrencyLimits { concurrencyKey slotCount }
  }
}
"""

# What the UI's "Join the Dagster community" dialog sends when dismissed (Skip).
SET_NUX_SEEN = "mutation SetNuxSeen { setNuxSeen }"

MATERIALIZATIONS_QUERY = """
query Materializations($assetKey: AssetKeyInput!, $partitions: [String!]) {
  assetNodeOrError(assetKey: $assetKey) {
    __typename
    ... on AssetNode {
      assetMaterializations(partitions: $partitions) {
        partition
        runId
        timestamp
        metadataEntries {
          label
          ... on IntMetadataEntry { intRepr }
        }
      }
    }
  }
}
"""


OBSERVATIONS_QUERY = """
query Observations($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    __typename
    ... on AssetNode {
      assetObservations(limit: 1) {
        timestamp
        metadataEntries {
          label
          ... on IntMetadataEntry { intRepr }
        }
      }
    }
  }
}
"""


class DagsterGraphQL:
    """POSTs to `<webserver>/graphql`; every call is bounded by a timeout."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()

    def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.session.post(
            f"{self.base_url}/graphql",
            json={"query": query, "variables": variables or {}},
            timeout=REQUEST_TIMEOUT_SECONDS,
        )
        if response.status_code != 200:
            raise GraphQLError(f"POST /graphql: {response.status_code} {response.text[:2000]}")
        body = response.json()
        if body.get("errors"):
            raise GraphQLError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def close(self) -> None:
        self.session.close()

    # Workspace and daemons.

    def loaded_repositories(self) -> dict[str, dict[str, Any]]:
        """Repositories of every loaded code location, as `{location: repository}`; empty while
        a location is still loading. A location that failed to load raises with its error."""
        workspace = self.execute(WORKSPACE_QUERY)["workspaceOrError"]
        if workspace["__typename"] != "Workspace":
            raise GraphQLError(f"workspace: {workspace}")
        found: dict[str, dict[str, Any]] = {}
        for entry in workspace["locationEntries"]:
            location = entry["locationOrLoadError"]
            if location is None or entry["loadStatus"] != "LOADED":
                continue
            if location["__typename"] == "PythonError":
                raise GraphQLError(f"code location {entry['name']}: {location['message']}")
            for repository in location["repositories"]:
                found[entry["name"]] = repository
        return found

    def unhealthy_daemons(self) -> list[str]:
        """Required daemons without a recent heartbeat (empty once the daemon is up)."""
        health = self.execute(DAEMON_HEALTH_QUERY)["instance"]["daemonHealth"]
        return [
            status["daemonType"]
            for status in health["allDaemonStatuses"]
            if status["required"] and not status["healthy"]
        ]

    # Backfills and runs.

    def launch_asset_backfill(self, asset_keys: list[list[str]], partition_names: list[str]) -> str:
        """What the UI's "Materialize" dialog sends for chosen days of the selected assets."""
        params = {
            "tags": UI_EXECUTION_TAGS,
            "assetSelection": [{"path": key} for key in asset_keys],
            "partitionNames": partition_names,
            "fromFailure": False,
        }
        result = self.execute(LAUNCH_PARTITION_BACKFILL, {"backfillParams": params})
        launched = result["launchPartitionBackfill"]
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise GraphQLError(f"launchPartitionBackfill: {launched}")
        return str(launched["backfillId"])

    def backfill(self, backfill_id: str) -> dict[str, Any]:
        found = self.execute(BACKFILL_QUERY, {"backfillId": backfill_id})
        backfill = found["partitionBackfillOrError"]
        if backfill["__typename"] != "PartitionBackfill":
            raise GraphQLError(f"backfill {backfill_id}: {backfill}")
        return backfill

    def runs(self, run_filter: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Runs matching a `RunsFilter`, each with its tags as a dict."""
        found = self.execute(RUNS_QUERY, {"filter": run_filter or {}})["runsOrError"]
        if found["__typename"] != "Runs":
            raise GraphQLError(f"runsOrError: {found}")
        return [
            {**run, "tags": {tag["key"]: tag["value"] for tag in run["tags"]}}
            for run in found["results"]
        ]

    def backfill_runs(self, backfill_id: str) -> list[dict[str, Any]]:
        return self.runs({"tags": [{"key": BACKFILL_TAG, "value": backfill_id}]})

    # Sensors and assets.

    def start_sensor(self, selector: dict[str, str]) -> str:
        started = self.execute(START_SENSOR, {"sensorSelector": selector})["startSensor"]
        if started["__typename"] != "Sensor":
            raise GraphQLError(f"startSensor: {started}")
        return str(started["sensorState"]["status"])

    def set_sensor_cursor(self, selector: dict[str, str], cursor: str) -> str | None:
        variables = {"sensorSelector": selector, "cursor": cursor}
        updated = self.execute(SET_SENSOR_CURSOR, variables)["setSensorCursor"]
        if updated["__typename"] != "Sensor":
            raise GraphQLError(f"setSensorCursor: {updated}")
        return updated["sensorState"]["typeSpecificData"]["lastCursor"]

    def sensor(self, selector: dict[str, str]) -> dict[str, Any]:
        found = self.execute(SENSOR_QUERY, {"sensorSelector": selector})["sensorOrError"]
        if found["__typename"] != "Sensor":
            raise GraphQLError(f"sensorOrError: {found}")
        return found["sensorState"]

    def asset_partitions(self, asset_key: list[str]) -> dict[str, Any]:
        found = self.execute(ASSET_PARTITIONS_QUERY, {"assetKey": {"path": asset_key}})
        node = found["assetNodeOrError"]
        if node["__typename"] != "AssetNode":
            raise GraphQLError(f"assetNodeOrError: {node}")
        return node

    def latest_observation(self, asset_key: list[str]) -> dict[str, int] | None:
        """The integer metadata of the asset's latest observation (None before the first)."""
        found = self.execute(OBSERVATIONS_QUERY, {"assetKey": {"path": asset_key}})
        node = found["assetNodeOrError"]
        if node["__typename"] != "AssetNode":
            raise GraphQLError(f"assetNodeOrError: {node}")
        if not node["assetObservations"]:
            return None
        (latest,) = node["assetObservations"]
        return {
            entry["label"]: int(entry["intRepr"])
            for entry in latest["metadataEntries"]
            if "intRepr" in entry
        }

    def pools(self) -> dict[str, Any]:
        """`poolConfig` (granularity, default limit) and `limits`: each pool's slot count."""
        instance = self.execute(POOLS_QUERY)["instance"]
        return {
            "config": instance["poolConfig"],
            "limits": {
                limit["concurrencyKey"]: limit["slotCount"]
                for limit in instance["concurrencyLimits"]
            },
        }

    def dismiss_community_dialog(self) -> None:
        """Marks the instance's first-visit dialog as seen, as its Skip button does; it would
        otherwise cover the page in every fresh browser profile on 127.0.0.1."""
        self.execute(SET_NUX_SEEN)

    def materialization_metadata(
        self, asset_key: list[str], partitions: list[str]
    ) -> dict[str, dict[str, int]]:
        """The integer metadata of each partition's latest materialization: what the UI plots."""
        variables = {"assetKey": {"path": asset_key}, "partitions": partitions}
        node = self.execute(MATERIALIZATIONS_QUERY, variables)["assetNodeOrError"]
        if node["__typename"] != "AssetNode":
            raise GraphQLError(f"assetNodeOrError: {node}")
        events = sorted(node["assetMaterializations"], key=lambda event: float(event["timestamp"]))
        return {  # later materializations of a partition replace earlier ones
            event["partition"]: {
                entry["label"]: int(entry["intRepr"])
                for entry in event["metadataEntries"]
                if "intRepr" in entry
            }
            for event in events
        }


def materialized_days(statuses: dict[str, Any]) -> set[str]:
    """The days a daily asset's `assetPartitionStatuses` reports as materialized."""
    days: set[str] = set()
    for status_range in statuses["ranges"]:
        if status_range["status"] != "MATERIALIZED":
            continue
        first = date.fromisoformat(status_range["startKey"])
        last = date.fromisoformat(status_range["endKey"])
        days.update((first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1))
    return days
