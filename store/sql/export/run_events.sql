-- export of view run_events for one run (fastface export). params: $run_id
select * from run_events where run_id = $run_id;
