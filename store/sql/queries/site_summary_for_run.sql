-- site_summary_for_run: site_summary rows of a run with the site geometry.
-- params: $run_id
select s.*, sites.part, sites.block, sites.attention, sites.layer, sites.attn, sites.heads,
       sites.height as grid_height, sites.width as grid_width
from site_summary as s
left join sites on sites.run_id = s.run_id and sites.site = s.site
where s.run_id = $run_id
order by s.site, s.stage, s.branch, s.token;
