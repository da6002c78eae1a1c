"""Persistence: the ClickHouse metrics store, the object store and the control database.

Not built yet; see the storage issue. Only the package exists so that the distribution
layout is final from the start.
"""
