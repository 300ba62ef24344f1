"""The live dashboard of the warehouse (Panel on the Bokeh server); `flightpipe dashboard`."""
