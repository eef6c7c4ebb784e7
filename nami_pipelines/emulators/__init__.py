"""Local emulators of the mParticle Events API and the Amplitude HTTP V2 API
(docs/mparticle.md, docs/amplitude.md).

They implement the APIs' rules on their own, from those pages and mParticle's official JSON Schema,
and import nothing from `destinations/` or `delivery/`: they exist to check the senders.
"""

from nami_pipelines.emulators.control import EmulatorClient, EmulatorError
from nami_pipelines.emulators.fault_plan import FaultPlan, FaultRule
from nami_pipelines.emulators.server import EmulatorProcess, serve
from nami_pipelines.emulators.settings import EmulatorSettings

__all__ = [
    "EmulatorClient",
    "EmulatorError",
    "EmulatorProcess",
    "EmulatorSettings",
    "FaultPlan",
    "FaultRule",
    "serve",
]
