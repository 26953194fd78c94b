import json
import os


def load_config(path, defaults=None):
    config = dict(defaults or {})
    if os.path.exists(path):
        with open(path) as f:
            config.update(⟨⟩)
    return config
