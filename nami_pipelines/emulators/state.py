"""Everything one running emulator holds: settings, the fault plan, and both APIs' state."""

from typing import Protocol

from nami_pipelines.emulators.amplitude_api import AmplitudeEmulator
from nami_pipelines.emulators.fault_plan import Api, FaultRule
from nami_pipelines.emulators.faults import FaultInjector, PartialReject
from nami_pipelines.emulators.mparticle_api import MParticleEmulator
from nami_pipelines.emulators.mparticle_schema import BatchValidator
from nami_pipelines.emulators.recorder import ApiRecorder, Tally
from nami_pipelines.emulators.replies import Incoming, Outcome, Reply
from nami_pipelines.emulators.settings import EmulatorSettings


class EmulatedApi(Protocol):
    """What the routes need from each API: its name, its records, its rules, its faults."""

    recorder: ApiRecorder

    @property
    def api(self) -> Api: ...

    def handle(
        self, incoming: Incoming, partial: PartialReject | None, tally: Tally
    ) -> Outcome: ...

    def fault_reply(self, rule: FaultRule) -> Reply: ...


class EmulatorState:
    """One instance per app; every request reads and changes it on the one event loop."""

    def __init__(self, settings: EmulatorSettings) -> None:
        self.faults = FaultInjector()
        self.mparticle = MParticleEmulator(ApiRecorder("mparticle"), BatchValidator())
        self.amplitude = AmplitudeEmulator(ApiRecorder("amplitude"))
        self.apply(settings)

    def apply(self, settings: EmulatorSettings) -> None:
        """Installs new settings; what was recorded so far stays."""
        self.settings = settings
        self.mparticle.configure(settings)
        self.amplitude.configure(settings)
        for emulated in (self.mparticle, self.amplitude):
            emulated.recorder.record_payloads = settings.record_payloads

    def reset(self) -> None:
        """Clears records, counters, rate history and faults; keeps the settings."""
        self.faults = FaultInjector()
        self.mparticle.recorder.reset()
        self.amplitude.recorder.reset()
        self.amplitude.reset()

    def emulated(self, api: str) -> EmulatedApi:
        if api == "mparticle":
            return self.mparticle
        if api == "amplitude":
            return self.amplitude
        raise ValueError("api must be 'mparticle' or 'amplitude'")
