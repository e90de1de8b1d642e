"""stardag's build benchmarks: the asv suite (``bench_*.py``) and a standalone runner.

See benchmarks/README.md. Importing this package never imports stardag, so the
suite loads on commits that predate the library; their benchmarks skip.
"""
