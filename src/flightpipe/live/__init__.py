"""Live mode: producers replay 2013 continuously on a shared replay clock, always-on landing
consumers announce every committed file, and each notice starts a load (Airflow's
``flightpipe_live`` DAG, through an AssetWatcher on the notices topic).

* :mod:`.clock` - the replay clock and which mode owns the replay cursor;
* :mod:`.producer` - one producer role, paced by the clock, with progress in the warehouse;
* :mod:`.notices` - the landing notices: written by the consumers, read by the watcher.
"""
