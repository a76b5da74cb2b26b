"""Benchmarks that print Markdown tables (never assertions). See bench/README.md."""
