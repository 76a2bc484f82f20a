-- studio_prompts: the prompts of the store's samples with their category (the Studio's choices).
-- No parameters.
select prompt, any_value(category) as category, count(*) as n_samples
from samples
group by prompt
order by prompt;
