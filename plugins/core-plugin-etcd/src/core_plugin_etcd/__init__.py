"""etcd for core: leases with TTL and keep-alive, fencing from key revisions, and the node registry."""
