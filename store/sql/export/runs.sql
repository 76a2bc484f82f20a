-- export of view runs for one run (fastface export). params: $run_id
select * from runs where run_id = $run_id;
