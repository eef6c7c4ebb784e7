"""The ASGI app serving both emulated APIs and the `/_emulator` control endpoints on one port."""

from starlette.applications import Starlette

from nami_pipelines.emulators.api_routes import api_routes
from nami_pipelines.emulators.control_routes import control_routes
from nami_pipelines.emulators.settings import EmulatorSettings
from nami_pipelines.emulators.state import EmulatorState


def build_app(settings: EmulatorSettings | None = None) -> Starlette:
    """A fresh emulator with its own state, so tests can run several side by side."""
    state = EmulatorState(settings or EmulatorSettings())
    app = Starlette(routes=[*api_routes(state), *control_routes(state)])
    app.state.emulator = state
    return app
