"""One emulator per test module, in its own process, reached only over HTTP; each test starts
from an empty emulator with the settings below."""

from collections.abc import Iterator

import pytest

from nami_pipelines.emulators import EmulatorProcess
from nami_pipelines_tests.emulators.credentials import SETTINGS


@pytest.fixture(scope="module")
def running_emulator() -> Iterator[EmulatorProcess]:
    with EmulatorProcess(SETTINGS) as emulator:
        yield emulator


@pytest.fixture
def emulator(running_emulator: EmulatorProcess) -> EmulatorProcess:
    """The module's emulator, emptied and set back to `SETTINGS`."""
    running_emulator.reset()
    running_emulator.configure(**SETTINGS.to_json())
    return running_emulator
