import dataclasses
import json

import pytest

from dl_jax import cli, config
from dl_jax.config import ClassifierConfig, DataConfig, ModelConfig, OptimConfig, TrainConfig
from dl_jax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Cfg:
    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    workdir: str | None = None  # output folder


def test_overrides_are_typed():
    cfg = config.parse_overrides(
        Cfg(),
        [
            "--model.activation=tanh",  # a bare string
            "--model.features=(256, 10)",
            "--model.use_bias=false",
            "--optim.learning_rate=1",  # an int where a float is declared
            "--train.epochs=3",
            "--data.dir=/tmp/mnist",
            "--workdir=runs/a",
        ],
    )
    assert cfg.model == ModelConfig(features=(256, 10), activation="tanh", use_bias=False)
    assert cfg.optim.learning_rate == 1.0 and isinstance(cfg.optim.learning_rate, float)
    assert (cfg.train.epochs, cfg.data.dir, cfg.workdir) == (3, "/tmp/mnist", "runs/a")
    assert Cfg().model == ModelConfig()  # the defaults are untouched
    assert config.parse_overrides(cfg, ["--data.dir=None"]).data.dir is None


def test_tuple_forms():
    for text in ("(64,10)", "[64, 10]", "64,10"):
        assert config.parse_overrides(Cfg(), [f"--model.features={text}"]).model.features == (
            64,
            10,
        )


def test_configs_are_hashable_and_frozen():
    assert hash(Cfg()) == hash(Cfg())
    with pytest.raises(dataclasses.FrozenInstanceError):
        Cfg().train.epochs = 3


@pytest.mark.parametrize(
    "arg, message",
    [
        ("--train.epoch=3", r"unknown key --train.epoch; valid keys: model.name, .*epochs"),
        ("--train.epochs=ten", r"--train.epochs=ten: expected int, got 'ten'"),
        ("--train.epochs=2.5", r"expected int, got 2.5"),
        ("--model.features=(128, x)", r"expected a tuple of int"),
        ("--model.use_bias=maybe", r"expected bool"),
        ("--optim.learning_rate=fast", r"expected float, got 'fast'"),
        ("train.epochs=3", r"malformed argument 'train.epochs=3': expected --key=value"),
        ("--train.epochs", r"malformed argument"),
        ("--train.epochs=0", r"--train.epochs=0 is invalid: expected an int > 0"),
        ("--optim.learning_rate=-1", r"expected a number > 0"),
        ("--model.features=()", r"expected a non-empty tuple of positive widths"),
    ],
)
def test_bad_overrides(arg, message):
    with pytest.raises(ConfigError, match=message):
        config.parse_overrides(Cfg(), [arg])


def test_help_lists_every_field_with_its_comment(capsys):
    cli.run(lambda cfg: None, Cfg(), "Doc line.", ["--help"])
    out = capsys.readouterr().out
    assert out.startswith("Doc line.")
    assert "--optim.learning_rate=0.001  # step size" in out
    assert "--workdir=None  # output folder" in out
    assert out.count("\n  --") == len(config.field_paths(Cfg())) > 20


def test_run_turns_user_errors_into_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.run(lambda cfg: None, Cfg(), "", ["--nope=1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown key --nope") and err.count("\n") == 1


def test_config_is_plain_json_data():
    written = json.loads(json.dumps(config.to_dict(Cfg())))
    assert written["model"]["features"] == [128, 64, 10] and written["model"]["name"] == "mlp"
    assert config.differences(written, Cfg()) == []


def test_a_field_newer_than_a_saved_run_is_unchanged_at_its_default():
    saved = config.to_dict(ClassifierConfig())
    del saved["model"]["cell"]  # as a run saved before the field existed
    assert config.differences(saved, ClassifierConfig()) == []
    other = config.override(ClassifierConfig(), "model.cell", "gru")
    assert config.differences(saved, other) == ["model.cell: '<absent>' -> 'gru'"]


def test_fields_checked_together_may_come_in_any_order():
    argv = ["--dist.process_id=1", "--dist.num_processes=2", "--dist.coordinator=h:1"]
    for order in (argv, argv[::-1]):
        cfg = config.parse_overrides(ClassifierConfig(), order)
        assert (cfg.dist.process_id, cfg.dist.num_processes) == (1, 2)
