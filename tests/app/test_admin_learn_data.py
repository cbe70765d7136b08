"""The training page's series: running totals by day, loss curves on one step axis."""

from __future__ import annotations

from diffusellm.app.admin.learn_data import cumulative, loss_series

DAY = 86_400


def test_running_totals_carry_every_key_over_days_without_events() -> None:
    points = [(2 * DAY, "accepted"), (0, "open"), (2 * DAY, "rejected"), (0, "accepted"), (2 * DAY, "accepted")]
    assert cumulative(points, ["accepted", "rejected", "open"]) == {
        "x": [0, 2 * DAY], "accepted": [1, 3], "rejected": [0, 1], "open": [1, 1]}
    assert cumulative([], ["accepted"]) == {"x": [], "accepted": []}


def test_loss_curves_share_one_step_axis_and_records_without_losses_are_left_out() -> None:
    records = [{"label": "short", "losses": [2.0, 1.0]}, {"label": "old"}, {"label": "long", "losses": [3, 2.5, 2, "x"]}]
    assert loss_series(records) == {"x": [1, 2, 3, 4], "series": [
        {"label": "short", "values": [2.0, 1.0, None, None]},
        {"label": "long", "values": [3.0, 2.5, 2.0, None]}]}
    assert loss_series([]) == {"x": [], "series": []}
