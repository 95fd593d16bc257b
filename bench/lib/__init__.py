"""What the benchmarks share: the requests, the server processes, the load generator, the
tables and the host facts; and (`suite`) the suite's timeline.

Light on purpose: a spawned server process re-imports the script that started it, so the
modules a server or another bench needs import no nextbest code at module level (a nextbest
server imports it when it starts). Only `suite` does (the config loader), for run.py.
"""
