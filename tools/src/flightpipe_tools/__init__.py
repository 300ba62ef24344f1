"""Developer tooling of flightpipe, kept out of the runtime package an Airflow host installs.

* :mod:`flightpipe_tools.docs` - the diagrams (Graphviz) and the Spanish PDF write-up;
* :mod:`flightpipe_tools.demo` - the demo video recorded from a real pipeline run;
* :mod:`flightpipe_tools.cli` - ``flightpipe-tools docs ...`` and ``flightpipe-tools demo ...``.
"""
