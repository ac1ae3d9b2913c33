"""Several daemons on one PostgreSQL: the leader's lease, the fence, the shared wanted status."""
