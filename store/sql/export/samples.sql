-- export of view samples for one run (fastface export). params: $run_id
select * from samples where run_id = $run_id;
