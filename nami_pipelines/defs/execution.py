"""How a run executes its steps: in the run's own process. A delivery step already spreads a
large day over worker processes (`delivery.workers`), and a run holds one day, so a process per
step would only add a Python start (with pandas and Dagster imported) to every step of every
run; the pools still decide which integration's step may start."""

import dagster as dg


@dg.definitions
def execution() -> dg.Definitions:
    return dg.Definitions(executor=dg.in_process_executor)
