-- export of view faces for one run (fastface export). params: $run_id
select * from faces where run_id = $run_id;
