"""Protocols: named sets of inputs in YAML, merged as defaults ← protocol ← overrides (aiida-quantumespresso style)."""

from __future__ import annotations

import copy
import pathlib

import yaml


def merge_inputs(base: dict, update: dict) -> dict:
    """Recursively merge ``update`` into a copy of ``base``; ``None`` in ``update`` removes a key."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_inputs(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class ProtocolMixin:
    """Adds ``get_protocol_inputs`` and friends to a process class whose protocol file is ``<name>.yaml`` here."""

    _protocol_name: str

    @classmethod
    def _load_protocol_file(cls) -> dict:
        """The parsed protocol file."""
        return yaml.safe_load((pathlib.Path(__file__).parent / f"{cls._protocol_name}.yaml").read_text())

    @classmethod
    def get_default_protocol(cls) -> str:
        """Name of the default protocol."""
        return cls._load_protocol_file()["default_protocol"]

    @classmethod
    def get_available_protocols(cls) -> dict[str, dict]:
        """Each protocol's name and description."""
        return {
            name: {"description": values["description"]}
            for name, values in cls._load_protocol_file()["protocols"].items()
        }

    @classmethod
    def get_protocol_inputs(cls, protocol: str | None = None, overrides: dict | None = None) -> dict:
        """Return default inputs ← the protocol's values ← ``overrides``; an unknown protocol is refused."""
        data = cls._load_protocol_file()
        protocol = protocol or data["default_protocol"]
        if protocol not in data["protocols"]:
            raise ValueError(f"Unknown protocol {protocol!r}; choose one of {', '.join(data['protocols'])}.")
        values = {k: v for k, v in data["protocols"][protocol].items() if k != "description"}
        return merge_inputs(merge_inputs(data["default_inputs"], values), overrides or {})
