from omegaconf import OmegaConf

from sweeptrainer.config.compose import ConfigSources, compose
from sweeptrainer.config.naming import config_hash, run_name


def _cfg(*overrides):
    cfg = compose(ConfigSources(), list(overrides))
    return OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])


def test_default_name_matches_the_contract():
    assert run_name(_cfg()) == "Digits_FFNN_Adam_0.001_32_epoch_20_None_1"


def test_overrides_of_other_keys_are_appended():
    cfg = _cfg("model.dropout=0.2")
    assert run_name(cfg, ["model.dropout=0.2"]).endswith("_model.dropout-0.2")
    assert run_name(_cfg("seed=2"), ["seed=2"]) == "Digits_FFNN_Adam_0.001_32_epoch_20_None_2"


def test_operational_keys_change_neither_name_nor_hash():
    base, quiet = _cfg(), _cfg("progress_bar=false", "experiment_id=other")
    assert config_hash(base) == config_hash(quiet)
    assert run_name(quiet, ["progress_bar=false", "experiment_id=other"]) == run_name(base)


def test_hash_differs_for_different_training():
    assert config_hash(_cfg()) != config_hash(_cfg("model.dropout=0.3"))
    assert config_hash(_cfg()) == config_hash(_cfg())


def test_augmentation_is_named_and_hashed_only_when_there_is_one():
    plain = _cfg()
    without_group = OmegaConf.masked_copy(plain, [k for k in plain if k != "augmentation"])
    # runs from before the augmentation group keep their hash, so they are found again
    assert config_hash(plain) == config_hash(without_group)
    crop = _cfg("augmentation=RandomCrop")
    assert run_name(crop, ["augmentation=RandomCrop"]) == (
        "Digits_FFNN_Adam_0.001_32_epoch_20_None_RandomCrop_1"
    )
    assert config_hash(crop) != config_hash(plain)
    assert config_hash(_cfg("augmentation=RandomCrop", "augmentation.steps.0.padding=3")) != (
        config_hash(crop)
    )


def test_the_hash_text_is_omegaconfs_so_old_runs_keep_their_hash():
    import hashlib

    from sweeptrainer.config.naming import identity

    cfg = OmegaConf.merge(
        _cfg(),
        {"experiment_id": "ü 1", "model": {"odd": ["1", "0.5", "null", "yes", None, 1e-3]}},
    )
    text = OmegaConf.to_yaml(OmegaConf.create(identity(cfg)), sort_keys=True)
    assert config_hash(cfg) == hashlib.sha256(text.encode()).hexdigest()[:12]


def test_plus_and_plain_overrides_of_one_config_give_one_name_and_old_names_stay():
    from sweeptrainer.config.naming import _extra_overrides

    plus = ["++model.dropout=0.3", "gradient_clip_norm=1.0"]
    plain = ["model.dropout=0.3", "gradient_clip_norm=1.0"]
    assert _extra_overrides(plus) == _extra_overrides(plain)
    # names without +/~ are what they always were (the text order), e.g. a group and a key
    # of it: criterion.gamma before criterion
    both = ["criterion=Focal", "criterion.gamma=2"]
    assert _extra_overrides(both) == _extra_overrides(both, legacy=True)
    assert _extra_overrides(both) == ["criterion.gamma-2", "criterion-Focal"]
