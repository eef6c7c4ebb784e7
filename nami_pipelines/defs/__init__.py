"""Dagster definitions only, by domain; everything they call is plain Python elsewhere."""
