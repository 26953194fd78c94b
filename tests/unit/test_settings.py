"""Settings resolution: camelCase options in, frozen settings out, one problem per bad key, never a crash."""

from diffgem_lsp.settings import DESCRIPTIONS, Settings, camel, resolve_settings


def test_defaults_and_camel_case_keys():
    settings, problems = resolve_settings(
        {"invokedSteps": 12, "sampler": "entropy", "earlyStop": False}
    )
    assert problems == []
    assert (settings.invoked_steps, settings.sampler, settings.early_stop) == (12, "entropy", False)
    assert resolve_settings(None) == (Settings(), [])


def test_vscode_style_section_is_accepted():
    settings, problems = resolve_settings({"diffgem": {"debounceMs": 10}})
    assert settings.debounce_ms == 10 and problems == []


def test_bad_values_fall_back_with_one_message_each():
    settings, problems = resolve_settings(
        {
            "debounceMs": "soon",
            "device": "tpu",
            "invokedSteps": 0,
            "earlyStop": "yes",
            "seed": 1.5,
            "typo": 1,
        },
        base=Settings(debounce_ms=5),
    )
    assert settings.debounce_ms == Settings().debounce_ms
    assert (
        settings.device == "auto" and settings.invoked_steps == 24 and settings.early_stop is True
    )
    assert len(problems) == 6
    assert any("unknown setting diffgem.typo" in p for p in problems)
    assert any("diffgem.device" in p and "auto, cpu, cuda" in p for p in problems)


def test_not_an_object():
    settings, problems = resolve_settings(["x"])
    assert settings == Settings() and "must be an object" in problems[0]


def test_worker_key_tracks_model_settings_only():
    base = Settings()
    assert resolve_settings({"invokedSteps": 3}, base)[0].worker_key() == base.worker_key()
    assert resolve_settings({"promptCacheMb": 3}, base)[0].worker_key() != base.worker_key()


def test_every_setting_is_documented():
    from dataclasses import fields

    names = {f.name for f in fields(Settings)}
    assert names == set(DESCRIPTIONS)
    readme = open("README.md", encoding="utf-8").read()
    for name in names:
        assert f"`{camel(name)}`" in readme, name
