"""Runs a command safely: the context commands see, dispatch, operations and their gates, policy, liveness,
following executions."""
