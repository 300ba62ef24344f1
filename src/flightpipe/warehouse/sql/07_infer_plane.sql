-- Tail numbers seen in flights but in no planes reference: inferred members with unknown
-- attributes, so those flights keep a real plane key (flights without one use key 0).
INSERT INTO dw.dim_plane (plane_key, tailnum, is_inferred, member_source, load_batch_id)
SELECT dw.member_key(t.tailnum), t.tailnum, true, 'inferred', %(batch_id)s
FROM (SELECT DISTINCT tailnum FROM staging.flights WHERE tailnum IS NOT NULL) AS t
WHERE NOT EXISTS (SELECT 1 FROM dw.dim_plane AS d WHERE d.tailnum = t.tailnum)
ORDER BY t.tailnum;
