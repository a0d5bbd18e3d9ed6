"""Benchmarks and their data generators; each ``bench/<name>.py`` also runs as a script."""
