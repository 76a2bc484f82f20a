-- balance: the ID-versus-text balance of the decoupled blocks per run, site and step (view
-- balance), averaged over the run's samples for one branch.  id_share = id / (id + text) of the
-- mean per-query norms of the two terms; *_in_box / *_out_box over samples with a detected
-- generated face (n_face of them).  params: $run_ids, $branch
select
    b.run_id, b.site, b.part, b.step,
    count(*) as n_samples,
    avg(b.text_norm) as text_norm,
    avg(b.id_norm) as id_norm,
    avg(b.id_share) as id_share,
    avg(b.id_ratio) as id_ratio,
    count(b.id_share_in_box) as n_face,
    avg(b.id_share_in_box) as id_share_in_box,
    avg(b.id_share_out_box) as id_share_out_box
from balance as b
where list_contains($run_ids, b.run_id) and b.branch = $branch
group by all
order by b.run_id, b.site, b.step;
