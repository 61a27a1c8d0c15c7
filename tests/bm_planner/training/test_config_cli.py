"""Run configuration files and the bm-train command line (error paths; training itself needs bm_planner.data)."""

import pytest

from bm_planner.model.config import ConfigError
from bm_planner.training import RunConfig, TrainConfig, load_run_config
from bm_planner.training.cli import main


def test_presets_and_yaml_overrides(tmp_path):
    small = load_run_config("small")
    assert small.model.depth == 4 and small.train.batch_size == 64
    path = tmp_path / "run.yaml"
    path.write_text("preset: small\nmodel:\n  width: 128\ntrain:\n  lr: 3e-4\n  batch_size: 32\n")
    cfg = load_run_config(path)
    assert (cfg.model.width, cfg.model.depth, cfg.train.lr, cfg.train.batch_size) == (128, 4, 3e-4, 32)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "text,match",
    [
        ("model: {widht: 3}\n", "unknown model field"),
        ("train: {lr: -1.0}\n", "lr"),
        ("train: {batch_size: 0}\n", "batch_size"),
        ("trian: {}\n", "unknown top-level"),
        ("model: [1, 2]\n", "mapping"),
        ("model: {width: 64\n", "cannot parse"),
        ("preset: tiny\n", "unknown preset"),
        ("train: {mixed_precision: fp8}\n", "mixed_precision"),
    ],
)
def test_bad_run_files_are_rejected(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_run_config(path)


def test_train_config_validation():
    with pytest.raises(ConfigError, match="ema_min_decay"):
        TrainConfig(ema_min_decay=0.99, ema_max_decay=0.9)
    with pytest.raises(ConfigError, match="total_steps"):
        TrainConfig(total_steps=0)


def test_cli_reports_errors_cleanly(tmp_path, capsys):
    assert main(["--config", "nope", "--data", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    assert "neither a preset" in capsys.readouterr().err
    assert main(["--config", "small", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--resume"]) == 2
    assert "no checkpoint found" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("text", ["model: {width: 64}\ntrain: {total_steps: 30000}\n", "", "{}\n"],
                         ids=["no-preset", "empty", "empty-mapping"])  # fmt: skip
def test_a_file_without_preset_must_give_every_field(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="no 'preset:' .* name a preset or give every field"):
        load_run_config(path)
    # a saved run's config (every field, no preset) still loads
    from bm_planner.training.config import RunConfig

    full = RunConfig.preset("small").to_dict()
    assert RunConfig.from_dict(full) == RunConfig.preset("small")


def test_warmup_must_end_before_training_does(tmp_path):
    with pytest.raises(ConfigError, match="warmup_steps \\(500\\) must be < total_steps \\(300\\)"):
        TrainConfig(total_steps=300, warmup_steps=500)
    path = tmp_path / "run.yaml"
    path.write_text("preset: small\ntrain: {total_steps: 300}\n")  # small's warm-up is 500 steps
    with pytest.raises(ConfigError, match="warmup_steps"):
        load_run_config(path)
    TrainConfig(total_steps=1, warmup_steps=0)  # no warm-up at all is fine


@pytest.mark.parametrize("name", ["small", "base", "large"])
def test_shipped_config_files_are_the_presets(name):
    from pathlib import Path

    from bm_planner.training.config import RunConfig

    path = Path(__file__).resolve().parents[3] / "configs" / f"{name}.yaml"
    assert load_run_config(path) == RunConfig.preset(name)
