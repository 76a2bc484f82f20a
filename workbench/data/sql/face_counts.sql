-- face_counts: face detection outcome per chosen run (face_summary view): ffc = face fail count.
-- params: $run_ids
select * from face_summary where list_contains($run_ids, run_id) order by run_id;
