"""The Studio's chart layout: a parameter grid's images are exactly ``cell_px`` square with their
row and column headers centred on them; a map figure's height fits its image plus the colour bar;
the ID-token choices of the overlays."""

from __future__ import annotations

import pytest

from workbench.charts.studio import COLORBAR_PX, image_grid, map_height


def test_grid_cells_are_square_and_headed_by_their_values():
    cells = [dict(row=i, col=j, png=None, size=(64, 64), label=f"ID 0.{i}{j}") for i in range(2) for j in range(3)]
    fig = image_grid(cells, ["1.0", "3.0"], ["0.5", "0.8", "1.0"], row_title="am.am1.scale_up",
                     col_title="ip_scale", title="t", cell_px=150)
    m = fig.layout.margin
    plot_w, plot_h = fig.layout.width - m.l - m.r, fig.layout.height - m.t - m.b
    for n in range(1, 7):
        xd = fig.layout[f"xaxis{'' if n == 1 else n}"].domain
        yd = fig.layout[f"yaxis{'' if n == 1 else n}"].domain
        # each image's domain is 150 px square (by hand: no spare space for the image to float in)
        assert (xd[1] - xd[0]) * plot_w == pytest.approx(150, abs=0.5)
        assert (yd[1] - yd[0]) * plot_h == pytest.approx(150, abs=0.5)
    heads = {a.text: a for a in fig.layout.annotations if a.text.startswith("<b>")}
    assert set(heads) == {"<b>am.am1.scale_up = 1.0</b>", "<b>am.am1.scale_up = 3.0</b>", "<b>ip_scale = 0.5</b>",
                          "<b>ip_scale = 0.8</b>", "<b>ip_scale = 1.0</b>"}
    top_row = fig.layout["yaxis"].domain  # row 1 is the top row
    assert heads["<b>am.am1.scale_up = 1.0</b>"].y == pytest.approx(sum(top_row) / 2)
    assert heads["<b>am.am1.scale_up = 1.0</b>"].yanchor == "middle"  # "auto" slid it off its row
    assert heads["<b>ip_scale = 0.8</b>"].x == pytest.approx(sum(fig.layout["xaxis2"].domain) / 2)
    assert sorted(a.text for a in fig.layout.annotations if a.text.startswith("ID")) == sorted(
        c["label"] for c in cells)


def test_map_height_is_the_image_at_the_column_width_plus_the_colour_bar():
    assert map_height(200, (64, 64)) == 192 + COLORBAR_PX  # 4 px margins either side
    assert map_height(208, (200, 100)) == 100 + COLORBAR_PX  # a 2:1 image is half as tall


def test_token_choices_offer_the_default_sum_all_tokens_and_each_token():
    from workbench.studio.results import token_choices, token_text

    assert token_choices([0, 1, 2, 3]) == [(1, 2, 3), (0, 1, 2, 3), (0,), (1,), (2,), (3,)]
    assert token_choices([0]) == [(0,)]
    assert [token_text(t) for t in [(1, 2, 3), (0,), (0, 2)]] == ["1–3 (sum)", "token 0", "0+2 (sum)"]
