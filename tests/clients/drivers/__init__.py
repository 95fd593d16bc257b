"""Scripts run by an adapter's own virtual environment (see scripts/test-adapters.sh).

They import only nextbest_client and the framework, never the server: the framework's pins
clash with the server's. The test in the main environment starts the server, runs the
script against it, and checks the server's record of what the script did.
"""
