"""flightpipe."""
