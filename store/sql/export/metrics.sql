-- export of view metrics for one run (fastface export). params: $run_id
select * from metrics where run_id = $run_id;
