"""The calcfunction that decides a group-aware train/validation/test split."""

from aiida import orm
from aiida.engine import calcfunction

from ...dataset import SPLIT_NAMES, group_split


@calcfunction
def split_dataset(group_keys: orm.Dict, fractions: orm.List, seed: orm.Int) -> orm.Dict:
    """Split structures (uuid → grouping key) into train/validation/test uuid lists, keeping each key on one side."""
    uuids = sorted(group_keys.get_dict())
    keys = [group_keys[uuid] for uuid in uuids]
    indices = group_split(keys, tuple(fractions.get_list()), seed.value)
    result = {name: [uuids[i] for i in indices[name]] for name in SPLIT_NAMES}
    result["counts"] = {name: len(result[name]) for name in SPLIT_NAMES}
    result["groups"] = {name: len({keys[i] for i in indices[name]}) for name in SPLIT_NAMES}
    return orm.Dict(result)
