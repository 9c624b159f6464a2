"""Example catalogs used by the demo DAGs, the tests and the benchmarks."""
