-- studio_grids: the parameter grids of the store (grid_cells): id, base preset, checkpoint,
-- varied paths, runs.  No parameters.
select grid, any_value(base) as base, any_value(checkpoint) as checkpoint,
       list(distinct path order by path) filter (where path is not null) as paths,
       count(distinct run_id) as n_runs
from grid_cells
group by grid
order by grid;
