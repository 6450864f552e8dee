"""Notebook parameters are checked up front: a bad value fails in the first setup cell with a
message that starts with the parameter's name (tinytrain_core/params.py)."""
import json
import math
from pathlib import Path

import pytest

from tinytrain_core import data, methods
from tinytrain_core.nets import models
from tinytrain_core.params import (DomainsMissing, ParameterError, as_name_list, check_bool, check_choice,
                                   check_float, check_int, check_profile, known_domains, require_domains)

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.mark.parametrize("profile", ["smoke", "default", "paper"])
def test_each_profile_name_is_accepted(profile):
    assert check_profile(profile) == profile


@pytest.mark.parametrize("bad", ["defualt", "", None, 1])
def test_unknown_profile_names_the_parameter_and_the_allowed_values(bad):
    with pytest.raises(ParameterError, match=r"^profile: .*smoke, default, paper"):
        check_profile(bad)


def test_parameter_error_is_a_value_error():
    assert issubclass(ParameterError, ValueError)


def test_a_single_name_becomes_a_one_element_list():
    assert as_name_list("TinyTrain", "methods", methods.names()) == ["TinyTrain"]


def test_a_comma_separated_string_becomes_a_list():
    assert as_name_list("None, TinyTrain", "methods", methods.names()) == ["None", "TinyTrain"]


def test_lists_and_tuples_are_kept_without_duplicates():
    assert as_name_list(("mcunet-5fps", "mbv2-w0.35", "mcunet-5fps"), "models", models.MODEL_NAMES) == [
        "mcunet-5fps", "mbv2-w0.35"]


def test_none_stays_none_where_it_means_the_profile_default():
    assert as_name_list(None, "models", models.MODEL_NAMES) is None


def test_none_is_refused_where_no_default_exists_and_the_message_says_how_to_pass_the_name_none():
    with pytest.raises(ParameterError, match=r"^methods: None .*-r methods None"):
        as_name_list(None, "methods", methods.names(), allow_none=False)


@pytest.mark.parametrize("bad", ["Tinytrain", ["TinyTrain", "Fisher"], "TinyTrain,,Foo", [1]])
def test_unknown_method_names_are_refused_with_the_registry_names(bad):
    with pytest.raises(ParameterError, match=r"^methods: .*None, FullTrain, LastLayer, TinyTL, .*, TinyTrain$"):
        as_name_list(bad, "methods", methods.names(), allow_none=False)


@pytest.mark.parametrize("bad", ["", " , ", []])
def test_an_empty_name_list_is_refused(bad):
    with pytest.raises(ParameterError, match=r"^models: .*at least one"):
        as_name_list(bad, "models", models.MODEL_NAMES)


def test_an_unknown_model_is_refused_with_the_model_names():
    with pytest.raises(ParameterError, match=r"^models: 'mcunet'.*mcunet-5fps, mbv2-w0.35, proxyless-w0.3"):
        as_name_list("mcunet", "models", models.MODEL_NAMES)


@pytest.mark.parametrize("value", ["fisher", "l2", "random"])
def test_a_listed_choice_is_accepted(value):
    assert check_choice(value, "channels", ("fisher", "l2", "random")) == value


@pytest.mark.parametrize("bad", ["Fisher", None, ["l2"]])
def test_an_unlisted_choice_is_refused_with_the_choices(bad):
    with pytest.raises(ParameterError, match=r"^channels: .*fisher, l2, random"):
        check_choice(bad, "channels", ("fisher", "l2", "random"))


def test_a_choice_may_be_none_where_that_means_the_default():
    assert check_choice(None, "checkpoint", ("imagenet", "meta"), allow_none=True) is None


@pytest.mark.parametrize("value,minimum", [(1, 1), (200, 1), (0, 0)])
def test_integers_at_or_above_the_minimum_are_accepted(value, minimum):
    assert check_int(value, "episodes", minimum=minimum) == value


@pytest.mark.parametrize("bad", [-1, 0, "abc", "5", 5.0, True, None])
def test_bad_integers_name_the_parameter_the_value_and_the_range(bad):
    with pytest.raises(ParameterError, match=r"^episodes: .* integer >= 1") as e:
        check_int(bad, "episodes")
    assert repr(bad) in str(e.value)


def test_none_is_an_integer_parameter_default_only_where_allowed():
    assert check_int(None, "steps", allow_none=True) is None
    with pytest.raises(ParameterError, match=r"^steps: -3 .*or None"):
        check_int(-3, "steps", allow_none=True)


@pytest.mark.parametrize("value", [320, 6.5e6, 0.5])
def test_positive_numbers_are_accepted_as_floats(value):
    out = check_float(value, "memory_kib")
    assert out == value and isinstance(out, float)


@pytest.mark.parametrize("bad", [0, -1.0, "abc", math.nan, math.inf, False])
def test_non_positive_or_non_numeric_floats_are_refused(bad):
    with pytest.raises(ParameterError, match=r"^compute_macs: .*positive number"):
        check_float(bad, "compute_macs")


def test_a_float_may_be_none_where_that_means_the_default():
    assert check_float(None, "lr", allow_none=True) is None


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_flags_must_be_true_or_false(bad):
    assert check_bool(True, "force") is True
    with pytest.raises(ParameterError, match=r"^force: .*True or False"):
        check_bool(bad, "force")


# ---------------------------------------------------------------- require_domains

def _fake_domain(root: Path, name: str, n_classes: int = 2) -> None:
    """A manifest is all `list_domains` and `load_domain` read."""
    d = root / "domains" / name
    d.mkdir(parents=True)
    classes = [f"c{i}" for i in range(n_classes)]
    manifest = {"name": name, "role": data.BUILTIN.get(name, ("target",))[0],
                "splits": {"train": [], "val": classes[:1], "test": classes[1:]}}
    (d / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("TINYTRAIN_DATA_DIR", str(root))
    return root


def test_require_domains_returns_the_builtin_domains_when_all_are_built(data_root):
    for name in data.BUILTIN:
        _fake_domain(data_root, name)
    assert require_domains("default") == list(data.BUILTIN)


def test_missing_domains_are_named_with_the_command_that_builds_them(data_root):
    for name in data.BUILTIN:
        if name not in ("emoji", "signs"):
            _fake_domain(data_root, name)
    with pytest.raises(DomainsMissing, match=r"^domain\(s\) signs, emoji not built for profile default") as e:
        require_domains("default")
    assert "run `make data PROFILE=default` (or one domain at a time: `make data PROFILE=default DOMAIN=signs`)" in str(
        e.value)


def test_a_single_missing_domain_gets_its_one_domain_make_command(data_root):
    for name in data.BUILTIN:
        if name != "emoji":
            _fake_domain(data_root, name)
    with pytest.raises(DomainsMissing, match=r"emoji not built.*\(or `make data PROFILE=default DOMAIN=emoji`\)"):
        require_domains("default")


def test_a_domain_with_zero_classes_counts_as_missing_and_needs_a_forced_rebuild(data_root):
    for name in data.BUILTIN:
        _fake_domain(data_root, name, n_classes=0 if name == "emoji" else 2)
    with pytest.raises(DomainsMissing, match=r"emoji built with 0 classes.*--domain emoji --force"):
        require_domains("paper")


def test_only_the_named_domains_are_required(data_root):
    _fake_domain(data_root, "glyphs")
    assert require_domains("default", "glyphs") == ["glyphs"]
    with pytest.raises(DomainsMissing, match="cards not built"):
        require_domains("default", ["glyphs", "cards"])


def test_unknown_domain_names_are_refused_as_a_parameter(data_root):
    with pytest.raises(ParameterError, match=r"^domains: 'emojis'.*emoji"):
        require_domains("default", "emojis")


def test_bring_your_own_domains_are_known_once_built(data_root):
    _fake_domain(data_root, "mine")
    assert known_domains("default")[-1] == "mine"
    assert require_domains("default", "mine") == ["mine"]


def test_smoke_builds_the_fixture_when_it_is_missing(data_root):
    assert not data.fixture_ready()
    assert require_domains("smoke") == list(data.FIXTURE)
    assert data.fixture_ready()


# ---------------------------------------------------------------- a notebook end to end

def test_02_adapt_refuses_a_negative_episode_count_in_its_setup_cell(tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    monkeypatch.setenv("TINYTRAIN_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "02_out.ipynb"
    with pytest.raises(papermill.PapermillExecutionError) as e:
        papermill.execute_notebook(str(NOTEBOOKS / "02_adapt.ipynb"), str(out), kernel_name="tinytrain",
                                   parameters=dict(methods="TinyTrain", episodes=-1), cwd=str(NOTEBOOKS),
                                   progress_bar=False)
    assert e.value.ename == "ParameterError" and e.value.evalue.startswith("episodes: -1")
    cells = json.loads(out.read_text())["cells"]
    failed = [c for c in cells if c["metadata"].get("papermill", {}).get("status") == "failed"]
    assert len(failed) == 1 and "check_int(episodes" in "".join(failed[0]["source"])
    assert not (tmp_path / "data").exists(), "it failed before touching any data"


# ---------------------------------------------------------------- issue 22: limits and types

@pytest.mark.parametrize("name,value,limit", [("episodes", 10**9, 50000), ("steps", 10**6, 10000),
                                              ("workers", 10**4, 128), ("seed", 2**40, 2**32 - 1)])
def test_a_count_above_its_limit_is_refused_naming_the_parameter_the_value_and_the_limit(name, value, limit):
    with pytest.raises(ParameterError, match=rf"^{name}: {value} .*limit is {limit} .*params.py, LIMITS\['{name}'\]"):
        check_int(value, name, minimum=0)


def test_a_number_above_its_limit_is_refused_too():
    with pytest.raises(ParameterError, match=r"^lr: 5.0 .*limit is 1 "):
        check_float(5.0, "lr")


def test_every_profile_size_is_within_the_parameter_limits():
    from tinytrain_core import profiles
    from tinytrain_core.params import LIMITS
    for p in profiles.PROFILES:
        s = {st: profiles.settings(p, st) for st in ("frozen", "meta", "adapt", "ablations", "costs")}
        sizes = {"episodes": [s["meta"]["episodes"], s["adapt"]["episodes"], s["ablations"]["episodes"]],
                 "val_episodes": [s["adapt"]["val_episodes"]], "steps": [s["adapt"]["steps"]],
                 "n_frozen_episodes": [s["frozen"]["episodes"]], "n_hist_episodes": [s["frozen"]["hist_episodes"]],
                 "workers": [s["adapt"]["workers"]], "batch_tasks": [s["adapt"]["batch_tasks"]],
                 "sweep_tasks": [s["adapt"]["budget_sweep_tasks"]], "measure_batch": [s["costs"]["measure_batch"]],
                 "ways": [s["meta"]["ways"]], "shots": [s["meta"]["shots"]], "queries": [s["meta"]["queries"]],
                 "lr": [s["meta"]["lr"]], "memory_kib": list(s["ablations"]["memory_kib"])}
        for name, values in sizes.items():
            assert max(values) <= LIMITS[name], (p, name)


def test_one_number_is_a_one_element_number_list():
    from tinytrain_core.params import as_number_list
    assert as_number_list(100, "memory_kib") == [100.0]
    assert as_number_list([60, 100.0, 60], "memory_kib") == [60.0, 100.0]
    assert as_number_list(None, "memory_kib") is None


@pytest.mark.parametrize("bad", ["abc", "60,100", "", [], ["60"], [60, -1], True, 10**10])
def test_text_empty_or_bad_numbers_are_refused_where_numbers_are_expected(bad):
    from tinytrain_core.params import as_number_list
    with pytest.raises(ParameterError, match=r"^memory_kib: "):
        as_number_list(bad, "memory_kib")


def _setup_of_03(**params):
    """Notebook 03's parameters cell, papermill's injected values, then its setup cell up to its
    first use of the data (`base = ...`): what a bad parameter must fail in, before any work."""
    cells = [c for c in json.loads((NOTEBOOKS / "03_ablations.ipynb").read_text())["cells"] if c["cell_type"] == "code"]
    setup = "".join(cells[1]["source"]).split("\nbase = ablations.base_config")[0]
    ns = {}
    exec("".join(cells[0]["source"]), ns)
    ns.update(params)
    exec(setup, ns)
    return ns


@pytest.mark.parametrize("params,message", [
    (dict(memory_kib="abc"), r"^memory_kib: 'abc' .*a number .*or a list"),
    (dict(memory_kib=[]), r"^memory_kib: \[\] "),
    (dict(model=""), r"^model: '' is not allowed; choose one of mcunet-5fps"),
    (dict(checkpoint=""), r"^checkpoint: '' is not allowed; choose one of imagenet, meta"),
    (dict(episodes=10**9), r"^episodes: 1000000000 .*limit is 50000"),
])
def test_03_refuses_a_bad_parameter_in_its_setup_cell(params, message):
    with pytest.raises(ParameterError, match=message):
        _setup_of_03(**params)


def test_03_takes_one_memory_budget_as_a_list_of_one():
    ns = _setup_of_03(memory_kib=100)
    assert ns["memory_kib"] == (100.0,) and ns["model"] == "mcunet-5fps"
    assert _setup_of_03()["memory_kib"] == (60.0, 100.0, 160.0)


def test_02_adapt_refuses_a_billion_episodes_in_its_setup_cell_before_any_work(tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    monkeypatch.setenv("TINYTRAIN_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(papermill.PapermillExecutionError) as e:
        papermill.execute_notebook(str(NOTEBOOKS / "02_adapt.ipynb"), str(tmp_path / "02_out.ipynb"),
                                   kernel_name="tinytrain", parameters=dict(episodes=10**9), cwd=str(NOTEBOOKS),
                                   progress_bar=False)
    assert e.value.ename == "ParameterError" and e.value.evalue.startswith("episodes: 1000000000")
    assert "limit is 50000" in e.value.evalue
    assert not (tmp_path / "data").exists(), "it failed before touching any data"
