"""Every config says which command runs it, and builds and runs one tiny step."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from callqa.data.rubric import load_rubric
from callqa.data.schema import read_calls
from callqa.data.synth.config import load_synth_config
from callqa.data.synth.generate import generate_corpus

CONFIGS = Path(str(resources.files("callqa.configs")))
ALL = sorted(CONFIGS.rglob("*.yaml"))


def test_configs_exist() -> None:
    assert {p.parent.name for p in ALL} >= {"rubric", "synth"}


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_config_starts_with_its_command(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# callqa "), f"{path} must start with the command that runs it"


@pytest.mark.parametrize("path", sorted((CONFIGS / "synth").glob("*.yaml")), ids=lambda p: p.name)
def test_synth_config_renders_one_call(path: Path, tmp_path: Path) -> None:
    cfg = load_synth_config(path, calls=1, coverage_sentences=1, agents=3)
    generate_corpus(cfg, tmp_path / "c", workers=1)
    (call,) = read_calls(tmp_path / "c" / "calls.jsonl")
    assert call.turns and call.inspections


@pytest.mark.parametrize("path", sorted((CONFIGS / "rubric").glob("*.yaml")), ids=lambda p: p.name)
def test_rubric_config_loads(path: Path) -> None:
    assert load_rubric(path).items


def test_unknown_synth_setting_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("# callqa synth\ncals: 3\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"unknown synth settings \['cals'\]"):
        load_synth_config(bad)


TRAINING = sorted(p for d in ("asr", "ser", "qa") for p in (CONFIGS / d).glob("*.yaml"))


@pytest.mark.parametrize("path", TRAINING, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_training_config_shares_the_trainer_block(path: Path) -> None:
    """The device, clipping and MLflow settings live in configs/common/; a config keeps only its own."""
    import yaml

    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert (path.parent / cfg["config"]).resolve() == (CONFIGS / "common" / "trainer-cpu.yaml").resolve()
    assert "trainer" not in cfg, "a nested trainer: block would replace the shared logger"
    assert not [k for k in cfg if k.startswith("trainer.logger.init_args.tracking_uri")]
    assert cfg["trainer.logger.init_args.run_name"]
