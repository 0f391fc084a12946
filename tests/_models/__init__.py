"""Test-only model builders, shared by the tests and the benchmarks (``bench/`` puts ``tests/`` on ``sys.path``);
kept out of the installed package. Frameworks are imported inside the builders."""
