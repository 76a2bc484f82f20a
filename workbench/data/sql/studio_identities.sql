-- studio_identities: the identities of the store's samples with a stored ID photo path and the
-- prompts they were generated with (the Studio's choices).  No parameters.
select identity, any_value(id_image_path) as id_image_path, count(*) as n_samples,
       list(distinct prompt order by prompt) as prompts
from samples
group by identity
order by identity;
