"""The one switch for the production set of schedules and sensors: `NAMI_AUTOMATION=on` starts
them all as soon as the code location loads; unset (or `off`), they wait for a click under
Automation, so a laptop pointed at real accounts sends nothing on its own."""

import os

import dagster as dg

AUTOMATION_VARIABLE = "NAMI_AUTOMATION"
_STATES = {"on": True, "off": False, "": False}


def automation_on() -> bool:
    """Whether `NAMI_AUTOMATION` asks for the schedules and sensors to run by default."""
    value = os.environ.get(AUTOMATION_VARIABLE, "").strip().lower()
    if value not in _STATES:
        raise ValueError(f"{AUTOMATION_VARIABLE} must be 'on' or 'off', not {value!r}")
    return _STATES[value]


def sensor_default() -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if automation_on() else dg.DefaultSensorStatus.STOPPED


def schedule_default() -> dg.DefaultScheduleStatus:
    if automation_on():
        return dg.DefaultScheduleStatus.RUNNING
    return dg.DefaultScheduleStatus.STOPPED
