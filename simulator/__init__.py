"""A faithful Cloudify Manager REST simulator: plain WSGI, stdlib only (contract: shared/reference/*.md).

    sim = Simulator(now=time.time, sleep=time.sleep, version="7.0.5", edition="community",
                    users={"admin": "admin"}, tenants=("default_tenant",), data_dir=None, durations=None)
    sim.wsgi, sim.node_wsgi("mgr-2"), sim.nodes, sim.set_cluster([...]), sim.set_service(node, svc, active)
    sim.set_node_down(node), sim.set_password(user, pw), sim.add_user(name, pw, role), sim.add_tenant(name)
    sim.faults.*  (simulator.faults), simulator.seed.seed_demo(sim), simulator.server.serve/make_server

Nothing runs in the background: executions advance from `now()` whenever a request arrives (or `sim.advance()`).
"""

from simulator.sim import Simulator

__all__ = ["Simulator"]
