"""The worked example of the budgeted selection (training/explain.py, plots.selection_walk): its
table agrees with `select_scheme` and with the cost model, its sentences come from its numbers,
its figure saves. Real ImageNet weights of mcunet-5fps, the fixture's first test task."""
import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from tinytrain_core.data import episode_config, episode_tensors, fixture_ready, sample_episodes  # noqa: E402
from tinytrain_core.nets import checkpoints  # noqa: E402
from tinytrain_core.paths import project_root  # noqa: E402
from tinytrain_core.training.costs import scheme_costs  # noqa: E402
from tinytrain_core.training.explain import (BOTH, CHOSEN, COMPUTE, MEMORY, explain_lines,  # noqa: E402
                                             explain_selection, readable)
from tinytrain_core.training.fisher import fisher_potential  # noqa: E402
from tinytrain_core.training.schemes import UpdateScheme, conv_weights_of  # noqa: E402
from tinytrain_core.training.selection import RATIOS, layer_scores, n_channels, select_scheme  # noqa: E402

BUDGETS = [(100.0, 8e6), (60.0, 3e6), (320.0, 6.5e6)]


@pytest.fixture(scope="module")
def task():
    root = project_root()
    if not fixture_ready(root / "data" / "fixture"):
        pytest.skip("fixture domains missing: run `make fixture`")
    try:
        net = checkpoints.create("mcunet-5fps", pretrained=True).backbone.eval()
    except (FileNotFoundError, RuntimeError) as e:
        pytest.skip(f"ImageNet weights of mcunet-5fps unavailable: {e}")
    ep = sample_episodes("fixture_a", "test", 1, episode_config("smoke"), seed=0, profile="smoke")[0]
    xs, ys, _, _ = episode_tensors(ep)
    return net, net.conv_shapes(), fisher_potential(net, xs, ys)


@pytest.mark.parametrize("mem,macs", BUDGETS)
@pytest.mark.parametrize("channels", ["fisher", "l2", "random"])
def test_chosen_rows_are_exactly_the_schemes_convs_and_ratios(task, mem, macs, channels):
    net, shapes, fp = task
    w = conv_weights_of(net)
    table = explain_selection(fp, shapes, mem, macs, channels=channels, conv_weights=w)
    scheme = select_scheme(fp, shapes, mem, macs, channels=channels, conv_weights=w)
    chosen = table[table.outcome == CHOSEN]
    assert set(chosen.conv) == set(scheme.weights)
    for r in chosen.itertuples():
        assert len(scheme.weights[r.conv]) == n_channels(shapes[r.conv], r.ratio)
        assert r.kept == f"{len(scheme.weights[r.conv])}/{shapes[r.conv].in_channels}"
    assert table.outcome.isin([CHOSEN, COMPUTE, MEMORY, BOTH]).all()
    assert table.loc[table.outcome != CHOSEN, "ratio"].isna().all()


def test_rows_follow_the_ranking_by_s_i_with_its_terms(task):
    _, shapes, fp = task
    table = explain_selection(fp, shapes, 100.0, 8e6)
    s = layer_scores(fp, shapes)
    assert list(table.conv) == sorted(s, key=lambda i: (-s[i], i)) and list(table["rank"]) == list(range(1, 43))
    # s_i = P_i / ((|W_i| / max|W|) * (M_i / max M)), term by term
    assert table.s_i.to_numpy() == pytest.approx((table.P_i / (table.w_share * table.m_share)).to_numpy())
    assert table.s_i.to_numpy() == pytest.approx([s[i] for i in table.conv])


@pytest.mark.parametrize("mem,macs", BUDGETS)
def test_refusal_reasons_are_the_budgets_the_cheapest_try_breaks(task, mem, macs):
    net, shapes, fp = task
    table = explain_selection(fp, shapes, mem, macs, conv_weights=conv_weights_of(net))
    spent_m = spent_k = 0.0
    for r in table.itertuples():   # replay the walk: what was spent when each conv's turn came
        assert (r.spent_macs, r.spent_kib) == pytest.approx((spent_m, spent_k))
        if r.outcome == CHOSEN:
            assert r.step_macs <= macs and r.step_kib <= mem
            spent_m, spent_k = r.step_macs, r.step_kib
            continue
        assert r.step_ratio == RATIOS[-1]
        over_c, over_m = r.added_macs > macs - r.spent_macs, r.added_kib > mem - r.spent_kib
        assert (over_c, over_m) == {COMPUTE: (True, False), MEMORY: (False, True), BOTH: (True, True)}[r.outcome]


def test_alone_costs_are_the_conv_trained_alone_at_the_smallest_ratio(task):
    _, shapes, fp = task
    table = explain_selection(fp, shapes, 100.0, 8e6).set_index("conv")
    for i in (0, 2, 28, 41):
        k = n_channels(shapes[i], RATIOS[-1])
        c = scheme_costs(shapes, UpdateScheme("x", {i: tuple(range(k))}, frozenset({i})))
        assert table.loc[i, "alone_macs"] == c.backward_macs and table.loc[i, "alone_kib"] == c.memory_kib
        # the path: every conv after i computes its input gradient
        assert table.loc[i, "alone_path_macs"] == sum(s.macs for s in shapes[i + 1:])


def test_sentences_are_read_from_the_table(task):
    _, shapes, fp = task
    table = explain_selection(fp, shapes, 100.0, 8e6)
    lines = explain_lines(table, 100.0, 8e6)
    top = table.iloc[0]
    assert top.outcome != CHOSEN   # the fixture task's best-scored conv is an early one
    assert any(line.startswith(f"conv {top.conv} ({top['name']}) has the highest s_i") for line in lines)
    assert any(f"{top.alone_macs / 1e6:.2f} M MACs" in line for line in lines)
    first = table[table.outcome == CHOSEN].iloc[0]
    assert any(f"conv {first.conv} ({first['name']})" in line and "best-scored conv that fits" in line
               for line in lines)
    assert lines[-1] == (f"Of 42 candidate convs: {(table.outcome == CHOSEN).sum()} chosen, "
                         f"{(table.outcome == COMPUTE).sum()} refused: compute, {(table.outcome == MEMORY).sum()} "
                         f"refused: memory, {(table.outcome == BOTH).sum()} refused: both.")
    # a different table, different sentences: nothing is hard-coded
    assert explain_lines(explain_selection(fp, shapes, 1e6, 1e12), 1e6, 1e12)[1].startswith(
        f"conv {top.conv} ({top['name']}), 1st by s_i, is the best-scored conv that fits")


def test_readable_table_is_in_millions(task):
    _, shapes, fp = task
    table = explain_selection(fp, shapes, 100.0, 8e6)
    r = readable(table)
    assert r.alone_M.iloc[0] == pytest.approx(table.alone_macs.iloc[0] / 1e6, abs=0.005)
    assert "alone_macs" not in r


def test_figure_is_a_figure_and_a_small_png(task, tmp_path):
    from tinytrain_core.report import plots
    import matplotlib.pyplot as plt
    _, shapes, fp = task
    table = explain_selection(fp, shapes, 100.0, 8e6)
    path = tmp_path / "adapt_worked_example.png"
    fig = plots.selection_walk(table, 100.0, 8e6, title="fixture task", path=path)
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) == 3
    assert path.exists() and 10_000 < path.stat().st_size < 250_000
    plt.close(fig)
    with pytest.raises(ValueError):
        plots.selection_walk(pd.DataFrame({"conv": [0]}), 100.0, 8e6)


def test_select_scheme_unchanged_by_the_walk_refactor(task):
    """select_scheme now runs selection.walk: the scheme on the real task is still the one of the
    inline loop (re-derived here from scratch)."""
    net, shapes, fp = task
    s = layer_scores(fp, shapes)
    scheme = UpdateScheme("TinyTrain")
    for i in sorted(s, key=lambda i: (-s[i], i)):
        for r in RATIOS:
            k = n_channels(shapes[i], r)
            chans = tuple(sorted(torch.topk(fp.channel_scores(i), k).indices.tolist())) \
                if k < shapes[i].in_channels else tuple(range(shapes[i].in_channels))
            trial = UpdateScheme("TinyTrain", {**scheme.weights, i: chans}, scheme.biases | {i})
            c = scheme_costs(shapes, trial)
            if c.memory_kib <= 100.0 and c.backward_macs <= 8e6:
                scheme = trial
                break
    assert select_scheme(fp, shapes, 100.0, 8e6).weights == scheme.weights


def test_convs_that_fit_alone_but_not_after_the_walks_choices_are_counted_and_the_first_named(task):
    _, shapes, fp = task
    table = explain_selection(fp, shapes, 100.0, 8e6)
    late = table[(table.outcome != CHOSEN) & (table.alone_macs <= 8e6) & (table.alone_kib <= 100.0)]
    assert len(late) and (late.spent_macs > 0).all()   # each was refused only because of earlier choices
    r = late.iloc[0]
    line = next(x for x in explain_lines(table, 100.0, 8e6) if "would fit alone" in x)
    assert line.startswith(f"{len(late)} refused conv(s) would fit alone") and f"conv {r.conv} ({r['name']})" in line
