"""Prefect flows: thin schedules over ops_core.api, watched in the Prefect UI."""
