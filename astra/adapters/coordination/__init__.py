"""Coordination between `astra serve` replicas (see `astra/ports/coordination.py`): `local` for
one process, `postgresql` for replicas on one database."""
