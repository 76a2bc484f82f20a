-- map_words: the prompt words whose text-attention maps (stream 'text', migration 0005: the
-- decoupled block's softmax(Q K^T / sqrt(d)) of the word, its sub-word tokens summed, stage 'pre')
-- the runs of the shown samples captured: the word options of the attention overlay, from the
-- pre-aggregated map_stats view (no map row read).  params: $run_ids
select m.run_id, m.site, m.step, m.branch, m.stage, m.word, m.n_data
from map_stats as m
where m.stream = 'text' and list_contains($run_ids, m.run_id)
order by m.word, m.run_id, m.site, m.step;
