-- The views and grants are current state, kept in sql/current/ and applied after every
-- migration run when their text changes; this table remembers what was applied last.
-- depends: 0021_roles_by_duty

CREATE TABLE admin.applied_sql (
    name        text PRIMARY KEY,
    fingerprint text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE admin.applied_sql IS 'Last applied fingerprint (SHA-256 of the text, and for grants the duty roles present) of each file in sql/current/.';
