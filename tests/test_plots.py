"""tinytrain_core.report.plots: the numbers behind the figures (by hand and against the committed summary),
and every figure built from the committed results/default tables: panels, labels, legends, order.

Set PLOTS_CHECK_DIR to keep the PNGs (e.g. PLOTS_CHECK_DIR=/tmp/plots_check) for a look."""
import json
import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy.stats import t as t_dist  # noqa: E402

from tinytrain_core.stats import paired_diff_ci95   # noqa: E402
from tinytrain_core.experiment import taskrows   # noqa: E402
from tinytrain_core.report import plots   # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "default"
ADAPT = RESULTS / "adapt" / "mcunet-5fps"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path.relative_to(ROOT)} is missing (committed result table)")
    return path


@pytest.fixture
def out(tmp_path):
    d = Path(os.environ.get("PLOTS_CHECK_DIR") or tmp_path)
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def all_rows():
    need(ADAPT)
    if not [p for p in ADAPT.glob("*.csv") if p.stem not in taskrows.TABLES]:
        pytest.skip(f"no per-domain CSVs in {ADAPT.relative_to(ROOT)}")
    return plots.read_adapt_rows(ADAPT)


@pytest.fixture(scope="module")
def rows(all_rows):
    """The test rows of one checkpoint (meta, where the rows have checkpoints): what a figure draws."""
    both = ((all_rows.method == "FullTrain") & (all_rows.checkpoint == "meta")).any()   # older rows: one per method
    return all_rows[all_rows.checkpoint == "meta"] if both else all_rows


def texts(fig):
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text)]


def data_axes(fig):
    """Axes that are not colorbars."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def legend_labels(fig):
    legs = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    return [[t.get_text() for t in leg.get_texts()] for leg in legs]


# ---------------------------------------------------------------------------------------------
# orders and statistics
# ---------------------------------------------------------------------------------------------

def test_method_and_domain_order():
    assert plots.method_order(["Zeta", "TinyTrain", "None", "Alpha", "FullTrain", "SparseUpdate", "LastLayer"]) == \
        ["None", "LastLayer", "SparseUpdate", "FullTrain", "TinyTrain", "Alpha", "Zeta"]
    assert plots.domain_order(["average", "zoo", "clipart", "icons", "cards", "abc", "signs"]) == \
        ["icons", "signs", "cards", "clipart", "abc", "zoo", "average"]
    pal = plots.method_palette(["TinyTrain", "Other"])
    assert pal["TinyTrain"] == plots.method_palette(["None", "TinyTrain"])["TinyTrain"]
    assert pal["Other"] != pal["TinyTrain"]


def test_stratified_mean_ci_by_hand():
    # domain A: 1, 2, 3 (mean 2, var 1, n 3); domain B: 10, 20 (mean 15, var 50, n 2)
    df = pd.DataFrame({"domain": ["A"] * 3 + ["B"] * 2, "method": "m", "accuracy": [1, 2, 3, 10, 20]})
    s = plots.stratified_mean_ci(df).set_index("domain")
    assert list(s.index) == ["A", "B", "average"]
    assert s.loc["A", "mean"] == pytest.approx(2.0)
    assert s.loc["A", "ci95"] == pytest.approx(4.3026527 * math.sqrt(1 / 3))  # t_{0.975, 2}
    assert s.loc["B", "ci95"] == pytest.approx(12.7062047 * math.sqrt(50 / 2))  # t_{0.975, 1}
    # the average weighs each domain once (not the pooled 7.2 of the five values)
    assert s.loc["average", "mean"] == pytest.approx((2 + 15) / 2)
    assert s.loc["average", "se"] == pytest.approx(math.sqrt(1 / 3 + 50 / 2) / 2)
    df = (1 / 3 + 25) ** 2 / ((1 / 3) ** 2 / 2 + 25 ** 2 / 1)  # Welch-Satterthwaite
    assert s.loc["average", "df"] == pytest.approx(df)
    assert s.loc["average", "ci95"] == pytest.approx(t_dist.ppf(0.975, df) * math.sqrt(1 / 3 + 50 / 2) / 2)
    assert s.loc["average", "n"] == 5 and s.loc["average", "n_strata"] == 2


def test_stratified_average_uses_shared_domains_and_single_tasks_give_nan():
    df = pd.DataFrame({"domain": ["A", "A", "B", "B", "C"], "method": ["m", "m", "m", "m", "k"],
                       "accuracy": [1.0, 3.0, 5.0, 7.0, 9.0]})
    s = plots.stratified_mean_ci(df.assign(method="m"))
    c = s[s["domain"] == "C"].iloc[0]
    assert c["n"] == 1 and math.isnan(c["ci95"])
    assert math.isnan(s[s["domain"] == "average"].iloc[0]["ci95"])
    # m has A and B, k only C: no shared domain, so no average unless asked per group
    s2 = plots.stratified_mean_ci(df)
    assert (s2["domain"] == "average").sum() == 0
    s3 = plots.stratified_mean_ci(df, common_strata=False).set_index(["method", "domain"])
    assert s3.loc[("m", "average"), "mean"] == pytest.approx(4.0)


def test_paired_differences_by_hand():
    df = pd.DataFrame({"domain": ["A"] * 4, "episode": [0, 1, 0, 1], "method": ["R", "R", "X", "X"],
                       "accuracy": [50.0, 60.0, 55.0, 70.0]})
    d = plots.paired_differences(df, reference="R")
    assert list(d["diff"]) == [5.0, 10.0]
    with pytest.raises(ValueError, match="duplicate"):
        plots.paired_differences(pd.concat([df, df]), reference="R")
    with pytest.raises(ValueError, match="not among"):
        plots.paired_differences(df, reference="Q")


def test_parse_scheme():
    assert plots.parse_scheme("31:240/240;38:48/384") == {31: (240, 240), 38: (48, 384)}
    assert plots.parse_scheme("conv31:2/4; conv 5:1/1;") == {31: (2, 4), 5: (1, 1)}
    assert plots.parse_scheme(float("nan")) == {} and plots.parse_scheme("") == {}
    with pytest.raises(ValueError, match="kept/in"):
        plots.parse_scheme("31-240")


def test_numbers_match_committed_summary(all_rows):
    """Per-arm, per-domain means/CIs equal summary.csv and paired differences equal paired.csv,
    recomputed here from the per-task rows; the average is the mean of the per-domain means with
    the Welch-Satterthwaite t interval."""
    summary = pd.read_csv(need(ADAPT / "summary.csv"), keep_default_na=False, na_values=[""])
    if "checkpoint" not in summary:
        pytest.skip("summary.csv predates arms (method x checkpoint): rerun `make reproduce`")
    arm = ["method", "checkpoint"]
    s = plots.stratified_mean_ci(all_rows, group=arm)
    per = s.merge(summary, on=["domain", *arm], suffixes=("", "_table"))
    assert len(per) == len(summary) == len(s)
    np.testing.assert_allclose(per["mean"], per["accuracy"], atol=1e-6)
    np.testing.assert_allclose(per["ci95"], per["ci95_table"], rtol=1e-6)
    for _, g in s.groupby(arm):
        avg = g[g["domain"] == plots.AVERAGE].iloc[0]
        doms = g[g["domain"] != plots.AVERAGE]
        assert avg["mean"] == pytest.approx(doms["mean"].mean())
        v = doms["sd"] ** 2 / doms["n"]
        df = v.sum() ** 2 / (v ** 2 / (doms["n"] - 1)).sum()
        assert avg["ci95"] == pytest.approx(t_dist.ppf(0.975, df) * math.sqrt(v.sum()) / len(doms))
    paired = pd.read_csv(need(ADAPT / "paired.csv"))
    head = paired[(paired.comparison == "TinyTrain − FullTrain (meta)") & (paired.domain != plots.AVERAGE)]
    for _, r in head.iterrows():
        g = all_rows[all_rows.domain == r.domain]
        a = g[(g.method == "TinyTrain") & (g.checkpoint == "meta")].set_index("episode").accuracy
        b = g[(g.method == "FullTrain") & (g.checkpoint == "meta")].set_index("episode").accuracy
        m, ci = paired_diff_ci95(a.loc[b.index], b)
        assert r["mean"] == pytest.approx(m) and r["ci95"] == pytest.approx(ci)
    assert len(head) == all_rows.domain.nunique()


# ---------------------------------------------------------------------------------------------
# figures from the committed tables
# ---------------------------------------------------------------------------------------------

def test_adapt_accuracy_figure(rows, out):
    fig = plots.adapt_accuracy(rows, reference="FullTrain", title="mcunet-5fps", path=out / "adapt_accuracy.png")
    assert (out / "adapt_accuracy.png").stat().st_size > 10_000
    ax_a, ax_b = data_axes(fig)
    assert "accuracy" in ax_a.get_ylabel() and "FullTrain" in ax_b.get_ylabel()
    assert ax_a.get_title(loc="left").startswith("(a)") and ax_b.get_title(loc="left").startswith("(b)")
    # methods in the required order in the legend
    methods = plots.method_order(rows["method"].unique())
    assert methods[0] == "None" and methods[-1] == "TinyTrain"
    assert ax_a.get_legend() is not None
    assert [t.get_text() for t in ax_a.get_legend().get_texts()] == methods
    # domains in table order, the average group last
    ticks = [t.get_text().split("\n")[0] for t in ax_b.get_xticklabels()]
    assert ticks == plots.domain_order(rows["domain"].unique()) + ["average"]
    # the drawn average point of each method is the mean of its per-domain means
    s = plots.stratified_mean_ci(rows)
    for c in ax_a.containers:
        m = c.get_label()
        y = c.lines[0].get_ydata()
        per = s[(s["method"] == m) & (s["domain"] != "average")]["mean"]
        assert y[-1] == pytest.approx(per.mean()), m
        assert len(y) == len(ticks)
    # (b): every method but the reference, and the labelled zero line
    assert [c.get_label() for c in ax_b.containers] == [m for m in methods if m != "FullTrain"]
    assert any(y == 0 for ln in ax_b.lines for y in np.atleast_1d(ln.get_ydata()) if len(ln.get_ydata()) == 2)
    assert any("FullTrain" in t and "no difference" in t for t in texts(fig))
    assert fig._suptitle.get_text() == "mcunet-5fps"


def test_adapt_accuracy_without_reference_and_bad_input(rows):
    fig = plots.adapt_accuracy(rows, reference=None)
    assert len(data_axes(fig)) == 1
    with pytest.raises(ValueError, match="reference"):
        plots.adapt_accuracy(rows, reference="Nope")
    nan_rows = rows.assign(method=rows["method"].where(rows["method"] != "None"))
    with pytest.raises(ValueError, match="keep_default_na"):
        plots.adapt_accuracy(nan_rows)


def test_layer_choices_figure(rows, out):
    tab = plots.layer_choice_table(rows, "TinyTrain")
    fig = plots.layer_choices(rows, path=out / "layer_choices.png")
    axes = data_axes(fig)
    cbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(axes) == 2 and len(cbars) == 2
    assert all(cb.get_ylabel() for cb in cbars)
    convs = sorted(tab["conv"].unique())
    # only convs ever chosen, named "conv N"
    for ax in axes:
        assert [t.get_text() for t in ax.get_xticklabels()] == [f"conv {c}" for c in convs]
        assert "conv index" in ax.get_xlabel()
    assert len(convs) < 42  # not the whole network of empty columns
    assert [t.get_text() for t in axes[0].get_yticklabels()] == plots.domain_order(
        rows.loc[rows["method"] == "TinyTrain", "domain"].unique())
    # annotated cells: share (a) and slice (b), n_convs inferred from FullTrain's scheme
    assert "100%" in [t.get_text() for t in axes[0].texts]
    slices = set(tab["slice"].dropna())
    assert slices and slices <= {t.get_text() for t in axes[1].texts}
    assert "of 42 convs" in fig._suptitle.get_text()
    # by hand: the share is trained tasks over all tasks of the domain
    t = rows[rows["method"] == "TinyTrain"]
    for _, r in tab.iterrows():
        mask = t["domain"] == r["domain"]
        k = sum(r["conv"] in plots.parse_scheme(s) for s in t.loc[mask, "scheme"])
        assert r["share"] == pytest.approx(k / mask.sum())


def test_episode_sizes_from_adapt_rows(rows, out):
    stats = plots.episode_stats_from_rows(rows)
    assert len(stats) == rows[["domain", "episode"]].drop_duplicates().shape[0]
    fig = plots.episode_sizes(stats, path=out / "episode_sizes_rows.png")
    axes = data_axes(fig)
    assert len(axes) == 3
    assert [ax.get_xlabel().split(" ")[0] for ax in axes] == ["ways", "support", "query"]
    assert [t.get_text() for t in axes[0].get_yticklabels()] == plots.domain_order(stats["domain"].unique())
    assert fig.legends and "mean" in legend_labels(fig)[0]


def test_episode_sizes_from_episode_files(out):
    files = sorted((ROOT / "data" / "episodes" / "default").glob("*_test_variable-*.json"))
    if not files:
        pytest.skip("no episode files under data/episodes/default (built by make data)")
    st = []
    for f in files:
        d = json.loads(f.read_text())
        st += [dict(domain=d["domain"], ways=len(e["classes"]), support=len(e["support"]), query=len(e["query"]))
               for e in d["episodes"]]
    stats = pd.DataFrame(st)
    fig = plots.episode_sizes(stats, path=out / "episode_sizes_files.png")
    axes = data_axes(fig)
    assert len(axes) == 3
    labels = [t.get_text().split(" (n=")[0] for t in axes[0].get_yticklabels()]
    assert labels == plots.domain_order(stats["domain"].unique()) and labels[0] == "icons"


def test_frozen_accuracy_figure(out):
    table = pd.read_csv(need(RESULTS / "domains.csv"))
    fig = plots.frozen_accuracy(table, path=out / "frozen_accuracy.png")
    (ax,) = data_axes(fig)
    tx = texts(fig)
    assert "chance (20%)" in tx and "ceiling (95%)" in tx
    assert fig._suptitle.get_text()
    assert "accuracy" in ax.get_ylabel()
    doms = [t.get_text() for t in ax.get_xticklabels()]
    assert doms == plots.domain_order(table["domain"])
    heights = [p.get_height() for p in ax.patches[:len(doms)]]
    np.testing.assert_allclose(heights, table.set_index("domain").loc[doms, "frozen_5w5s_acc"])
    colours = {p.get_facecolor() for p, d in zip(ax.patches, doms) if d != "icons"}
    base = ax.patches[doms.index("icons")].get_facecolor()
    assert len(colours) == 1 and base not in colours  # the base domain stands out
    assert any("base domain" in t for t in legend_labels(fig)[0])
    assert {y for ln in ax.lines for y in np.atleast_1d(ln.get_ydata())} >= {20.0, 95.0}


@pytest.mark.parametrize("only", [None, "mcunet-5fps"])   # all three backbones, and a single one
def test_meta_training_figure(only, out):
    table = pd.read_csv(need(RESULTS / "meta_training.csv"))
    paired = pd.read_csv(need(RESULTS / "meta_training_paired.csv"))
    if only:
        table, paired = table[table.model == only], paired[paired.model == only]
    fig = plots.meta_training(table, paired, path=out / f"meta_training_{only or 'all'}.png")
    models = list(dict.fromkeys(table["model"]))
    axes = data_axes(fig)
    assert len(axes) == 2 * len(models)
    assert [ax.get_title() for ax in axes[:len(models)]] == models
    assert "no change" in texts(fig)
    legends = legend_labels(fig)
    assert len(legends) == 2 and len(legends[0]) == 2
    assert set(legends[1]) <= {"helps", "no clear change", "hurts"}
    cats = [t.get_text() for t in axes[0].get_yticklabels()]
    assert cats[0] == "icons (base)" and "icons (base, val)" in cats and cats[-1] == "clipart"
    # the change drawn is the table's paired delta
    drawn = {}
    for c in axes[len(models)].containers:
        for x, y in zip(c.lines[0].get_xdata(), c.lines[0].get_ydata()):
            drawn[cats[int(round(y))]] = x
    p0 = paired[(paired["model"] == models[0]) & (paired["split"] == "test")].set_index("domain")["delta"]
    assert drawn["signs"] == pytest.approx(p0["signs"]) and drawn["icons (base)"] == pytest.approx(p0["icons"])


def test_meta_training_without_paired_table(out):
    table = pd.read_csv(need(RESULTS / "meta_training.csv"))
    fig = plots.meta_training(table, path=out / "meta_training_unpaired.png")
    assert "unpaired" in data_axes(fig)[len(table["model"].unique())].get_ylabel()


# ---------------------------------------------------------------------------------------------
# readable at a glance (issue 24): size, axes, colours, ticks, legends, titles
# ---------------------------------------------------------------------------------------------

def _extreme_rows() -> pd.DataFrame:
    """Per-task rows (3 tasks per domain) whose 95% t intervals run far past 0 and 100%."""
    tasks = {"signs": (100.0, 100.0, 40.0), "glyphs": (0.0, 0.0, 60.0), "cjk": (100.0, 50.0, 100.0)}
    recs = [dict(domain=d, episode=e, method=m, checkpoint="meta", accuracy=float(np.clip(a + k, 0, 100)))
            for d, accs in tasks.items() for k, m in enumerate(("None", "FullTrain", "TinyTrain"))
            for e, a in enumerate(accs)]
    return pd.DataFrame(recs)


def _lr_table(methods=("LastLayer", "AdapterDrop-75%", "AdapterDrop-50%", "AdapterDrop-25%", "SparseUpdate",
                       "TinyTL", "FullTrain", "Transductive", "TinyTrain")) -> pd.DataFrame:
    """lr_validation-shaped rows: nine methods, two checkpoints, validation accuracies up to 100%."""
    recs = []
    for m in methods:
        for ck in ("imagenet", "meta"):
            for d in ("pooled", "signs", "glyphs"):
                for i, lr in enumerate((0.0, 1e-4, 1e-3)):
                    recs.append(dict(method=m, checkpoint=ck, domain=d, lr=lr, val_accuracy=100.0 - 40 * (i == 2),
                                     val_tasks=3, chosen=i == 1))
    return pd.DataFrame(recs)


def _pareto_points(model: str = "mcunet-5fps") -> pd.DataFrame:
    """Pareto rows over ~1.5 decades of MACs and memory, intervals past 100%."""
    return pd.DataFrame([
        dict(model=model, checkpoint="meta", method="SparseUpdate", memory_kib_budget=b, backward_kib=k,
             backward_mmacs=mm, accuracy=95.0, ci95=12.0) for b, k, mm in ((60, 22.7, 5.7), (160, 121.3, 20.7))] + [
        dict(model=model, checkpoint="meta", method=m, memory_kib_budget=np.nan, backward_kib=k, backward_mmacs=mm,
             accuracy=a, ci95=9.0) for m, k, mm, a in (("LastLayer", 100.0, 1.6, 96.0), ("TinyTL", 390.0, 33.0, 4.0),
                                                       ("FullTrain", 1400.0, 44.0, 97.0))])


def _inputs(pareto, models=("mcunet-5fps",)):
    from tinytrain_core.report.inputs import Inputs
    summ = pd.DataFrame([dict(method=m, checkpoint=ck, domain="average", accuracy=97.0, ci95=10.0, backward_kib=k,
                              backward_mmacs=mm) for m, ck, k, mm in (("FullTrain", "imagenet", 1400.0, 44.0),
                                                                      ("TinyTrain", "meta", 100.0, 7.9))])
    return Inputs("smoke", {m: {"summary": summ} for m in models}, None, {"pareto": pareto}, {})


def _curves_figure(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYTRAIN_ROOT", str(tmp_path))
    hist = [dict(episode=e, train_loss=1.0 / (e + 1), val_acc=96.0, val_ci95=10.0) for e in range(0, 40, 10)]
    return plots.plot_curves({"mcunet-5fps": hist, "mbv2-w0.35": hist}, "smoke")


def _meta_table() -> pd.DataFrame:
    return pd.DataFrame([dict(model="mcunet-5fps", domain=d, split="test", checkpoint=ck, acc=a, ci95=15.0)
                         for d, a in (("icons", 97.0), ("signs", 3.0)) for ck in ("imagenet", "meta")])


def _frozen_table() -> pd.DataFrame:
    return pd.DataFrame({"domain": ["icons", "signs"], "role": ["base", "target"], "frozen_5w5s_acc": [97.0, 4.0],
                         "ci95": [10.0, 10.0]})


def _figure(name, monkeypatch, tmp_path):
    """(figure, [(axes, "x" or "y") of each accuracy axis]) for one figure drawn from extreme data."""
    from tinytrain_core.report import figures
    if name == "adapt_accuracy":
        fig = plots.adapt_accuracy(_extreme_rows(), reference="FullTrain")
        return fig, [(data_axes(fig)[0], "y")]
    if name == "lr_curves":
        fig = plots.lr_curves(_lr_table())
        return fig, [(ax, "y") for ax in data_axes(fig) if ax.get_visible()]
    if name == "ablation_channels":
        summ = pd.DataFrame([dict(domain="average", ablation="channels", criterion=c, memory_kib=k, accuracy=a,
                                  ci95=15.0) for c in ("fisher", "l2", "random") for k, a in ((60, 96.0), (160, 3.0))])
        fig = plots.ablation_channels(summ)
        return fig, [(data_axes(fig)[0], "y")]
    if name == "pareto":
        fig = plots.pareto(_pareto_points())
        return fig, [(ax, "y") for ax in data_axes(fig)]
    if name == "report_pareto":
        fig = figures.plot_pareto(_inputs(_pareto_points()), "mcunet-5fps")
        return fig, [(ax, "y") for ax in data_axes(fig)]
    if name == "meta_training":
        fig = plots.meta_training(_meta_table())
        return fig, [(data_axes(fig)[0], "x")]
    if name == "frozen_accuracy":
        fig = plots.frozen_accuracy(_frozen_table())
        return fig, [(data_axes(fig)[0], "y")]
    if name == "plot_curves":
        fig = _curves_figure(monkeypatch, tmp_path)
        return fig, [(fig.axes[1], "y")]
    raise KeyError(name)


ACCURACY_FIGURES = ["adapt_accuracy", "lr_curves", "ablation_channels", "pareto", "report_pareto", "meta_training",
                    "frozen_accuracy", "plot_curves"]


def _interval_ends(ax, which: str) -> list[float]:
    """Every end of every error bar drawn on ``ax``, along ``which``."""
    from matplotlib.container import ErrorbarContainer
    col = 1 if which == "y" else 0
    return [float(v) for c in ax.containers if isinstance(c, ErrorbarContainer)
            for lc in c.lines[2] for seg in lc.get_segments() for v in np.asarray(seg)[:, col]]


@pytest.mark.parametrize("name", ACCURACY_FIGURES)
def test_accuracy_axes_stay_within_0_and_100(name, monkeypatch, tmp_path):
    fig, acc_axes = _figure(name, monkeypatch, tmp_path)
    for ax, which in acc_axes:
        lo, hi = ax.get_ylim() if which == "y" else ax.get_xlim()
        assert 0.0 <= lo < hi <= 100.0, (name, lo, hi)
        ends = _interval_ends(ax, which)
        assert all(0.0 <= v <= 100.0 for v in ends), (name, min(ends, default=None), max(ends, default=None))


def test_clipped_intervals_keep_the_mean_and_cut_only_past_the_bounds():
    err = plots.common.clipped_errors([95.0, 50.0, 2.0], [10.0, 10.0, float("nan")])
    np.testing.assert_allclose(err, [[10.0, 10.0, 0.0], [5.0, 10.0, 0.0]])


def test_every_pair_of_method_colours_is_clearly_distinct():
    from itertools import combinations
    from matplotlib.colors import to_rgb
    names = list(plots.METHOD_ORDER) + ["Static", "Other"]       # the ten, and two without a fixed colour
    pal = plots.method_palette(names)
    close = [(a, b, round(float(np.linalg.norm(np.subtract(to_rgb(pal[a]), to_rgb(pal[b])))), 3))
             for a, b in combinations(names, 2)]
    assert [c for c in close if c[2] <= 0.25] == []


def test_lr_figure_is_at_most_2400_px_wide_and_keeps_a_panel_per_method(out):
    from PIL import Image
    tables = [("nine", _lr_table())]
    if (ADAPT / "lr_validation.csv").exists():
        from tinytrain_core.results import read_table
        tables.append(("committed", read_table(ADAPT / "lr_validation.csv")))
    for label, t in tables:
        fig = plots.lr_curves(t, path=out / f"lr_{label}.png")
        width, height = Image.open(out / f"lr_{label}.png").size
        assert width <= 2400 and height <= 2400, (label, width, height)
        titles = [ax.get_title() for ax in data_axes(fig) if ax.get_visible()]
        assert titles == plots.method_order(t["method"].unique())
        plt.close(fig)


def _tick_boxes(ax, which="x"):
    """Window boxes of the labelled ticks drawn on a axis (major and minor, inside the view)."""
    fig = ax.figure
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    axis = ax.xaxis if which == "x" else ax.yaxis
    ticks = axis._update_ticks()            # the ticks matplotlib draws: inside the view, labels set
    return [t.label1.get_window_extent(r) for t in ticks if t.label1.get_visible() and t.label1.get_text()]


def _assert_readable_log_axis(ax, what):
    boxes = _tick_boxes(ax)
    assert len(boxes) >= 2, f"{what}: {len(boxes)} labelled ticks"
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), f"{what}: tick labels overlap"


def test_pareto_log_axes_carry_at_least_two_tick_labels_and_none_overlap(rows):
    from tinytrain_core.report import figures
    figs = {"plots.pareto": plots.pareto(_pareto_points()),
            "figures.plot_pareto": figures.plot_pareto(_inputs(_pareto_points()), "mcunet-5fps")}
    committed = RESULTS / "ablations" / "pareto.csv"
    if committed.exists():
        from tinytrain_core.results import read_table
        p = read_table(committed)
        figs["plots.pareto (committed)"] = plots.pareto(p)
        figs["figures.plot_pareto (committed)"] = figures.plot_pareto(_inputs(p), "mcunet-5fps")
    for what, fig in figs.items():
        for ax in data_axes(fig):
            _assert_readable_log_axis(ax, f"{what}, {ax.get_xlabel()}")


@pytest.mark.parametrize("lo, hi", [(20.6, 28.0), (1.5, 45.0), (22.0, 1500.0), (1e-3, 1e6)])
def test_log_axes_have_readable_ticks_over_short_and_long_ranges(lo, hi):
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot([lo, hi], [0, 1])
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    plots.common._log_axis(ax, "x")
    _assert_readable_log_axis(ax, f"{lo}..{hi}")


def test_table1_heat_maps_have_a_colour_bar_and_ours_carry_their_ci():
    from tinytrain_core.report import figures
    from tinytrain_core.results import read_table
    t1 = read_table(need(RESULTS / "report" / "table1.csv"))
    fig = figures.plot_table1(t1, "mcunet-5fps")
    cbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(cbars) == 1 and "accuracy" in cbars[0].get_ylabel()
    ours, paper = data_axes(fig)
    r = t1[(t1.model == "mcunet-5fps") & (t1.method == "TinyTrain") & (t1.domain == "average")].iloc[0]
    assert f"{r.accuracy:.1f}\n±{r.ci95:.1f}" in [t.get_text() for t in ours.texts]
    assert paper.texts and all("±" not in t.get_text() for t in paper.texts)   # the paper gives no CI
    assert not any("nan" in t.get_text() for t in paper.get_xticklabels())     # fashion: no counterpart, "-"


def test_pareto_title_says_notebook_03_not_run_only_when_its_table_is_missing():
    from tinytrain_core.report import figures
    ran = _inputs(_pareto_points("mcunet-5fps"), models=("mcunet-5fps", "mbv2-w0.35"))
    title = figures.plot_pareto(ran, "mbv2-w0.35")._suptitle.get_text()
    assert "not run" not in title and "notebook 03 ran on mcunet-5fps" in title
    assert "notebook 03" not in figures.plot_pareto(ran, "mcunet-5fps")._suptitle.get_text()
    missing = _inputs(None, models=("mbv2-w0.35",))
    assert "notebook 03 not run" in figures.plot_pareto(missing, "mbv2-w0.35")._suptitle.get_text()


LEGEND_FIGURES = ["adapt_accuracy", "lr_curves", "ablation_channels", "pareto", "report_pareto", "meta_training",
                  "frozen_accuracy", "plot_curves"]


@pytest.mark.parametrize("name", LEGEND_FIGURES)
def test_legends_lie_outside_every_data_axes(name, monkeypatch, tmp_path):
    fig, _ = _figure(name, monkeypatch, tmp_path)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    assert legends, name
    boxes = [ax.get_window_extent(r) for ax in data_axes(fig) if ax.get_visible()]
    for leg in legends:
        lb = leg.get_window_extent(r)
        assert not any(lb.overlaps(b) for b in boxes), name
