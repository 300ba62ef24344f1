"""The PostgreSQL warehouse: migrations, load, checks.

Public API:

* :func:`flightpipe.warehouse.migrate.migrate` -- apply the versioned schema migrations;
* :func:`flightpipe.warehouse.load.load` -- Dask transform + load of new landing files;
* :func:`flightpipe.warehouse.checks.check_warehouse` / :func:`~.checks.run_checks` -- checks.
"""
