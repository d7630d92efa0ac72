"""Constants the tests of remote/'s parts share with their fixtures (conftest.py)."""

T0 = 1_900_000_000.0  # the virtual clock's start
HOUR = 3600.0
NOWHERE = "http://127.0.0.1:9"  # a client for parts that make no request
