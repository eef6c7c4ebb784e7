"""The client for an integration's type: the one place that maps configuration to a sender."""

from nami_pipelines.config import AnyIntegration, MParticleIntegration
from nami_pipelines.destinations.amplitude_client import AmplitudeClient
from nami_pipelines.destinations.client import DestinationClient
from nami_pipelines.destinations.http import RetryPolicy
from nami_pipelines.destinations.mparticle_client import MParticleClient


def client_for(
    integration: AnyIntegration,
    *,
    policy: RetryPolicy | None = None,
    throttle_hold_seconds: float | None = None,
) -> DestinationClient:
    if isinstance(integration, MParticleIntegration):
        return MParticleClient(integration, policy=policy)
    if throttle_hold_seconds is None:
        return AmplitudeClient(integration, policy=policy)
    return AmplitudeClient(integration, policy=policy, throttle_hold_seconds=throttle_hold_seconds)
