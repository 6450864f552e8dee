"""ablations (notebook 03): the arms run on 02's tasks at 02's LRs into their own folders, the
static arm trains exactly the scheme it was given, and the tables pair arms correctly.
Runs on the fixture with the per-task work replaced by a recorder (the real task: test_finetune.py,
test_methods.py and the notebook's smoke run)."""
import pandas as pd
import pytest
import torch

from tinytrain_core.experiment import ablations, adapt, taskrows, tasks
from tinytrain_core import methods, profiles
from tinytrain_core.nets import models
from tinytrain_core.methods.static import scheme_from_summary
from tinytrain_core.stats import stratified_mean_ci


def test_a_static_scheme_read_back_from_its_row_is_the_scheme_tinytrain_selected():
    net = models.create("mcunet-5fps", pretrained=False).backbone
    shapes = net.conv_shapes()
    x, y = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(0)), torch.arange(6) % 3
    chosen = methods.get("TinyTrain").scheme(net, x, y, methods.Context("mcunet-5fps", channels="random"))
    text = adapt.scheme_summary(chosen, shapes)
    assert "@" in text                                          # at least one partial conv
    ctx = methods.Context("mcunet-5fps", static_scheme=text)
    back = methods.get("Static").scheme(net, None, None, ctx)
    assert back.weights == chosen.weights and back.biases == chosen.biases
    with pytest.raises(ValueError, match="does not fit"):
        scheme_from_summary("41:3/7", shapes)
    with pytest.raises(ValueError, match="static_scheme"):
        methods.get("Static").scheme(net, None, None, methods.Context("mcunet-5fps"))
    assert "Static" not in methods.names()                      # an ablation arm, not a Table 1 method


def test_the_most_frequent_scheme_is_the_most_frequent_conv_set_then_its_most_frequent_channels():
    rows = pd.DataFrame(dict(method="TinyTrain", checkpoint="meta",
                             scheme=["1:2/4@3;5:8/8", "1:2/4@c;5:8/8", "1:2/4@c;5:8/8", "2:4/4", "2:4/4"]))
    scheme, share = ablations.most_frequent_scheme(rows)
    assert scheme == "1:2/4@c;5:8/8" and share == pytest.approx(0.6)
    with pytest.raises(ValueError, match="notebook 02"):
        ablations.most_frequent_scheme(rows, checkpoint="imagenet")


def test_ablation_rows_go_to_their_own_safe_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYTRAIN_ROOT", str(tmp_path))
    assert taskrows.out_dir("smoke", "mcunet-5fps", "l2_60_KiB").parts[-3:] == ("ablations", "mcunet-5fps", "l2_60_KiB")
    for bad in ("../adapt", "a/b", ".hidden"):
        with pytest.raises(ValueError, match="variant"):
            taskrows.out_dir("smoke", "mcunet-5fps", bad)
    assert {a.variant for a in ablations.arm_list("default", "1:4/4")} == {
        "fisher_60_KiB", "l2_60_KiB", "random_60_KiB", "fisher_100_KiB", "l2_100_KiB", "random_100_KiB",
        "fisher_160_KiB", "l2_160_KiB", "random_160_KiB", "activation_output", "fisher_path_conv", "static",
        "SparseUpdate_60_KiB", "SparseUpdate_100_KiB", "SparseUpdate_160_KiB"}


def test_an_arm_runs_02s_tasks_at_02s_learning_rate_with_its_own_settings(adapt_on_fixture, monkeypatch):
    seen = []

    def fake_task(method, net, state, tensors, cfg, lr, task_seed, chosen=None):
        seen.append((cfg.variant, method.name, cfg.channels, cfg.memory_kib, lr, task_seed))
        acc = 60.0 + 10 * (lr == 1e-3) + (cfg.channels == "fisher")
        return dict(accuracy=acc, backward_macs=0, backward_kib=0.0, select_s=0.0, train_s=0.0, n_layers=0,
                    scheme="1:4/4")
    monkeypatch.setattr(tasks, "adapt_task", fake_task)
    monkeypatch.setattr(tasks, "task_scheme", lambda *a: (None, {}))
    base = adapt.AdaptConfig(profile="smoke", methods=["TinyTrain"], checkpoints=("meta",), episodes=2,
                             lrs=(1e-4, 1e-3), meta_fallback=True).resolved()
    adapt.run(base, progress=False)                        # notebook 02: validation picks 1e-3 (fake accuracy)
    lrs = ablations.chosen_lrs(base, "TinyTrain", "meta")
    assert set(lrs.values()) == {1e-3}
    arm = ablations.Arm("channels", "l2 @ 60 KiB", "TinyTrain", dict(channels="l2", memory_kib=60.0))
    seen.clear()
    rows = ablations.run_arm(arm, base, "meta", 1, lrs, progress=False)
    assert {s[:5] for s in seen} == {("l2_60_KiB", "TinyTrain", "l2", 60.0, 1e-3)}
    assert len(rows) == len(base.domains) and set(rows.episode) == {0} and set(rows.arm) == {"l2 @ 60 KiB"}
    assert len(adapt.rows_of_run(base)) == 2 * len(base.domains)     # 02's rows untouched


def test_the_tables_pair_each_arm_with_its_reference_on_the_same_tasks():
    arms = ablations.arm_list("smoke", "1:4/4", memory_kib=(60.0,))
    acc = {"fisher @ 60 KiB": [70, 80, 60, 90], "l2 @ 60 KiB": [68, 79, 61, 85], "random @ 60 KiB": [60, 70, 50, 80],
           "SparseUpdate @ 60 KiB": [65, 75, 55, 85], "static": [69, 78, 60, 88], "activation output": [70, 80, 60, 90],
           "fisher_path conv": [70, 80, 60, 90], "TinyTrain (02)": [70, 80, 60, 90]}
    rows = pd.DataFrame([dict(domain=d, episode=e, method="TinyTrain", arm=a, checkpoint="meta", lr=1e-3,
                              accuracy=v[2 * i + e], backward_macs=1e6, backward_kib=50.0, select_s=0.0, train_s=1.0)
                         for a, v in acc.items() for i, d in enumerate(("a", "b")) for e in range(2)])
    base = adapt.AdaptConfig(profile="smoke", memory_kib=60.0, compute_macs=8e6, lrs=(1e-3,), domains=["a", "b"])
    t = ablations.tables(rows, arms, base, "meta")
    p = t["paired"].set_index(["comparison", "domain"])
    d = pd.DataFrame(dict(domain=["a", "a", "b", "b"], diff=[2, 1, -1, 5], comparison="x"))
    want = stratified_mean_ci(d, value="diff", group="comparison").set_index("domain").loc["average"]
    assert p.loc[("fisher − l2 @ 60 KiB", "average"), "mean"] == pytest.approx(want["mean"])
    assert p.loc[("fisher − l2 @ 60 KiB", "average"), "ci95"] == pytest.approx(want["ci95"])
    assert p.loc[("fisher @ 60 KiB − TinyTrain (02)", "average"), "mean"] == 0
    assert list(t["paired"].comparison.unique()[:3]) == ["fisher − l2 @ 60 KiB", "fisher − random @ 60 KiB",
                                                         "l2 − random @ 60 KiB"]
    assert set(t["pareto"].arm) == {"fisher @ 60 KiB", "SparseUpdate @ 60 KiB", "TinyTrain (02)"}
    assert any("fisher − l2 @ 60 KiB +1.8" in line for line in ablations.sentences(t["paired"]))


def test_every_profile_plans_known_methods_and_checkpoints_per_backbone():
    for profile in profiles.PROFILES:
        for model in profiles.settings(profile, "adapt")["models"]:
            cfg = adapt.AdaptConfig(profile=profile, model=model, domains=["x"], **adapt.plan(profile, model))
            arms = cfg.resolved().arms() if profile == "smoke" else cfg.arms()
            assert arms and {m for m, _ in arms} <= set(methods.names())
            assert ("TinyTrain", "meta") in arms
    mc = adapt.AdaptConfig(profile="default", domains=["x"], **adapt.plan("default", "mcunet-5fps"))
    both = {m for m in methods.names() if {(m, "imagenet"), (m, "meta")} <= set(mc.arms())}
    assert both == set(profiles.META_ABLATION) and len({m for m, _ in mc.arms()}) == 10
    with pytest.raises(ValueError, match="no adaptation plan"):
        adapt.plan("smoke", "mbv2-w0.35")
    assert profiles.budgets("mcunet-5fps") == (profiles.MEMORY_KIB, profiles.COMPUTE_MACS)
    assert adapt.AdaptConfig(profile="smoke", model="mbv2-w0.35", domains=["x"]).resolved().memory_kib == \
        profiles.budgets("mbv2-w0.35")[0]
