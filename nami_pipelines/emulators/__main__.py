"""`python -m nami_pipelines.emulators --host H --port P [--settings JSON]`."""

import argparse
import json

from nami_pipelines.emulators.server import serve
from nami_pipelines.emulators.settings import SETTINGS_VARIABLE, EmulatorSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m nami_pipelines.emulators",
        description="Local mParticle Events API and Amplitude HTTP V2 API emulators.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--settings",
        help=f"settings as JSON (default: ${SETTINGS_VARIABLE}, else built-in test credentials)",
    )
    arguments = parser.parse_args(argv)
    try:
        settings = (
            EmulatorSettings.from_json(json.loads(arguments.settings))
            if arguments.settings
            else EmulatorSettings.from_environment()
        )
    except (ValueError, TypeError) as error:
        parser.error(f"invalid settings: {error}")
    serve(arguments.host, arguments.port, settings)


if __name__ == "__main__":
    main()
