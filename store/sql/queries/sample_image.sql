-- sample_image: the generated PNG of one sample (zero or one row).
-- params: $run_id, $sample_key
select run_id, sample_key, width, height, image_png
from samples
where run_id = $run_id and sample_key = $sample_key;
