"""Consul for core: leases as Consul sessions with fencing tokens, and the node registry."""
