"""The development kit: Bot API emulator, simulated users, sandbox, scripted reporter and demo.

Used by the tests, the benchmark and ``make demo``; production code never imports it.
"""
