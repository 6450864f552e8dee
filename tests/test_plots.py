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
