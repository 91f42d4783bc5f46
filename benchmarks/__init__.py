"""Speed of this library next to the pinned JS reference: ``python -m benchmarks``.

Each workload in :mod:`benchmarks.workloads` has a twin in ``benchmarks/js/bench.js`` doing
the same work on the same inputs.
"""
