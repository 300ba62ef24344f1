"""Charts and the HTML report, drawn from the warehouse with SQL only.

Submodules are imported where used: plotting libraries are slow to import and the CLI
loads this package on every command.
"""
