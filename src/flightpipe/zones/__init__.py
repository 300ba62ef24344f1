"""Storage zones between the stages: ``landing`` (raw Parquet per Kafka offset range, written
by the consumers) and ``clean`` (the Dask transform's output per load batch). One module owns
each zone's reading and writing; nothing else touches their files."""
