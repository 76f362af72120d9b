"""Benchmarks of ptmscrape (not part of the test suite): ``python -m bench.run --quick|--full``."""
