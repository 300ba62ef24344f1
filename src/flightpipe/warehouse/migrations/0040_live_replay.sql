-- Live mode's replay clock and each producer's progress on it. Live producers replay 2013
-- continuously: replay time = anchor_replay + (now - anchor_wall) x speed. Each producer role
-- records how far it has sent; the replay cursor (meta.replay_cursor, shared with class mode)
-- moves past a day once every role has sent all of it, so switching modes neither skips nor
-- repeats a day in the warehouse.
-- depends: 0035_ingest_runs

CREATE TABLE meta.replay_clock (
    id            boolean PRIMARY KEY DEFAULT true CHECK (id),
    mode          text NOT NULL DEFAULT 'class' CHECK (mode IN ('class', 'live')),
    anchor_replay timestamptz NOT NULL,
    anchor_wall   timestamptz NOT NULL,
    speed         double precision NOT NULL CHECK (speed > 0),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE meta.replay_clock IS 'The one live replay clock (one row): which mode owns the replay cursor, and how replay time maps to wall time.';
COMMENT ON COLUMN meta.replay_clock.id IS 'Always true: the table holds one row.';
COMMENT ON COLUMN meta.replay_clock.mode IS 'class: Airflow ingest runs replay a slice per cycle; live: the live producers replay continuously.';
COMMENT ON COLUMN meta.replay_clock.anchor_replay IS 'Replay (2013) instant that corresponds to anchor_wall.';
COMMENT ON COLUMN meta.replay_clock.anchor_wall IS 'Wall-clock instant at which the replay clock showed anchor_replay.';
COMMENT ON COLUMN meta.replay_clock.speed IS 'Replay seconds per wall second (FLIGHTPIPE_REPLAY_SPEED when live mode started).';
COMMENT ON COLUMN meta.replay_clock.updated_at IS 'When the clock was last set (mode switch or new speed).';

CREATE TABLE meta.live_progress (
    role       text PRIMARY KEY,
    sent_until timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE meta.live_progress IS 'How far each live producer role has sent its events, on the replay clock.';
COMMENT ON COLUMN meta.live_progress.role IS 'Producer role: flights-EWR, flights-JFK, flights-LGA or weather.';
COMMENT ON COLUMN meta.live_progress.sent_until IS 'Every event of this role with an event time before this instant is delivered to Kafka.';
COMMENT ON COLUMN meta.live_progress.updated_at IS 'When the role last reported progress.';
