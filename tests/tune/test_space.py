"""The search-space syntax of `glassnet tune`: what is searched, what is fixed, and one clear line for a mistake."""

import sys

import pytest

from glassnet.errors import ConfigError
from glassnet.tune import parse_space, tune


class Recorder:
    """Stands in for an Optuna trial: records what was asked and answers the low end."""

    def __init__(self):
        self.asked = []

    def suggest_float(self, name, low, high, log=False):
        self.asked.append(("float", name, low, high, log))
        return low

    def suggest_int(self, name, low, high):
        self.asked.append(("int", name, low, high))
        return low

    def suggest_categorical(self, name, choices):
        self.asked.append(("choice", name, choices))
        return choices[0]


def test_searched_and_fixed_keys():
    space = parse_space(
        [
            "lr=log(1e-4, 1e-2)",
            "model.dropout=uniform(0,0.5)",
            "model.depth=int(1,3)",
            "model.width=[64,128,256]",
            "model.activation=[relu,gelu]",
            "epochs=5",
            "loggers=[csv]",  # a key that takes a list: its value, not a choice
            "class_weights=[1,5]",
        ]
    )
    trial = Recorder()
    drawn = {d.key: d.suggest(trial) for d in space.dimensions}
    assert trial.asked == [
        ("float", "lr", 1e-4, 1e-2, True),
        ("float", "model.dropout", 0.0, 0.5, False),
        ("int", "model.depth", 1, 3),
        ("choice", "model.width", [64, 128, 256]),
        ("choice", "model.activation", ["relu", "gelu"]),
    ]
    assert drawn["model.depth"] == 1 and isinstance(drawn["model.depth"], int)
    assert space.fixed == {"epochs": 5, "loggers": ["csv"], "class_weights": [1, 5]}
    assert space.describe()["search"] == {
        "lr": "log(0.0001,0.01)",
        "model.dropout": "uniform(0.0,0.5)",
        "model.depth": "int(1,3)",
        "model.width": "[64, 128, 256]",
        "model.activation": '["relu", "gelu"]',
    }


def test_a_mapping_takes_lists_as_choices_and_other_values_as_fixed():
    space = parse_space({"lr": "log(1e-4,1e-2)", "model.width": [8, 16], "epochs": 2, "loggers": ["csv"]})
    assert [(d.key, d.kind) for d in space.dimensions] == [("lr", "log"), ("model.width", "choice")]
    assert space.fixed == {"epochs": 2, "loggers": ["csv"]}


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("lr=log(0,1)", r"search space lr=log\(0,1\): log\(a,b\) draws between positive bounds"),
        ("lr=log(1e-2)", r"log\(\.\.\.\) takes two bounds, low and high, e.g. log\(1e-4,1e-2\)"),
        ("lr=lgo(1e-4,1e-2)", r"unknown function 'lgo'; a search is log\(a,b\), .* Did you mean log\(\.\.\.\)\?"),
        ("model.depth=int(1.5,3)", r"search space model.depth=int\(1.5,3\): the bounds must be integers"),
        ("lr=uniform(2,1)", "the bounds must be finite with low < high"),
        ("lr=uniform(a,b)", "the bounds must be numbers"),
        ("model.width=[]", "a choice needs at least one value"),
        ("model.width=[[1],[2]]", "the choices must be numbers, strings or booleans"),
        ("model.width=[8,8]", "a choice lists each value once"),
        ("epochs", "is not of the form key=value"),
    ],
)
def test_a_bad_search_is_one_line_quoting_it(item, message):
    with pytest.raises(ConfigError, match=message) as raised:
        parse_space([item])
    assert "\n" not in str(raised.value)


def test_without_optuna_tune_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # makes the import fail
    with pytest.raises(ConfigError, match=r"^glassnet tune needs Optuna: pip install 'glassnet\[tune\]'$"):
        tune(data="breast-cancer", model="mlp", space={"lr": "log(1e-4,1e-2)"}, trials=2)
