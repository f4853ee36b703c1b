"""Runs a command safely: the context commands see, dispatch, operations, policy, liveness, following executions."""
