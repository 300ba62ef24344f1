"""The documentation of flightpipe, generated from the code it describes.

* :mod:`flightpipe_tools.docs.diagrams` writes Graphviz DOT for the component/data-flow diagram,
  the Airflow DAG graph (read with Airflow's ``DagBag``) and the warehouse ER diagram (read
  from PostgreSQL's catalog), and renders them with ``dot``.
* :mod:`flightpipe_tools.docs.pdf` turns ``docs/es/documentacion.md`` into the A4 PDF.
* :mod:`flightpipe_tools.docs.cli` is ``flightpipe-tools docs ...``; ``make docs`` runs ``build``.

The DOT text is deterministic (everything sorted), so tests regenerate it and compare it
with the committed files without needing Graphviz or a browser.
"""
