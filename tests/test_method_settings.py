"""A method's --set keys as `vdcbench methods NAME` shows them: type, default and the comment."""

from __future__ import annotations

from dataclasses import dataclass, field

from click.testing import CliRunner

from vdcbench.cli import main
from vdcbench.methods.settings import Setting, method_settings


@dataclass(frozen=True)
class _Config:
    steps: int = 10            # optimisation steps per class
    # The learning rate of the synthetic pixels,
    # before the schedule.
    lr: float = 0.1
    name: str = field(default="a", metadata={"help": "from metadata"})  # not this
    quiet: bool = False

    def __post_init__(self) -> None:
        # a comment inside a method belongs to no field
        check: int = 1
        del check


def test_comments_above_and_beside_a_field_are_its_help_and_metadata_wins():
    assert method_settings(_Config) == [
        Setting("steps", "int", 10, "optimisation steps per class"),
        Setting("lr", "float", 0.1, "The learning rate of the synthetic pixels, before the schedule."),
        Setting("name", "str", "a", "from metadata"),
        Setting("quiet", "bool", False, ""),
    ]


def test_a_config_that_is_not_a_dataclass_has_no_settings():
    class NoConfig:
        pass
    assert method_settings(NoConfig) == []


def test_cli_lists_rdeds_keys_and_says_when_a_method_has_none():
    runner = CliRunner()
    shown = runner.invoke(main, ["methods", "rded"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "min_scale" in shown.output and "0.08" in shown.output
    assert "evenly spaced windows per video" in shown.output
    none = runner.invoke(main, ["methods", "random"])
    assert none.exit_code == 0 and "no settings" in none.output
    unknown = runner.invoke(main, ["methods", "rdd"])
    assert unknown.exit_code == 2 and "did you mean 'rded'" in unknown.output


def test_a_recorded_config_is_completed_with_the_registered_defaults():
    from vdcbench.methods.settings import with_defaults
    # An RDED archive made before min_scale existed ran with its default, the reference's 0.08.
    old = {"mipc": 70, "num_crop": 5, "factor": 1, "batch_size": 50, "teacher": "minic3d"}
    assert with_defaults("rded", old)["min_scale"] == 0.08
    assert with_defaults("rded", {"min_scale": 1.0})["min_scale"] == 1.0
    # A method not installed here is taken as recorded.
    assert with_defaults("not-installed", {"steps": 3}) == {"steps": 3}
