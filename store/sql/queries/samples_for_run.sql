-- samples_for_run: the samples of a run without the image bytes, in plan order.
-- params: $run_id
select * exclude (image_png), image_png is not null as has_image
from samples
where run_id = $run_id
order by sample_index nulls last, sample_key;
