-- export of view maps for one run (fastface export). params: $run_id
select * from maps where run_id = $run_id;
