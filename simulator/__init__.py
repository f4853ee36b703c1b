"""A faithful Cloudify Manager REST simulator (plain WSGI, stdlib only); see `simulator.sim.Simulator`."""

from simulator.sim import Simulator

__all__ = ["Simulator"]
