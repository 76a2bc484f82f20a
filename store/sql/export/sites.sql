-- export of view sites for one run (fastface export). params: $run_id
select * from sites where run_id = $run_id;
