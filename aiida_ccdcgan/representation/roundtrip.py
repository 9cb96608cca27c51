"""Encode → decode every structure without any neural network and measure what comes back."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

from ..errors import RepresentationError
from .config import MATCHER_SETTINGS, VoxelConfig, own_elements
from .decode import decode_batch
from .encode import OutsideLimits, canonical_crystal, check_representable, lattice_voxels, site_voxels


def roundtrip(
    structures: Sequence[Structure],
    elements: Sequence[str] | None,
    config: VoxelConfig | None = None,
    batch_size: int = 32,
    progress: Callable[[Iterable], Iterator] | None = None,
) -> dict:
    """Encode and decode every structure; return counts, the match rate, failures by reason and speeds.

    ``elements`` fixes the channel list for all structures; ``None`` gives every structure its own sorted
    element list (for multi-system data such as MP-20). ``config`` sets the other representation settings.
    Structures beyond the representation's limits are counted under ``outside_limits`` by reason and left out
    of the match rate; ``coverage`` is the fraction within the limits. Timings cover only the encoding
    (canonical frame + voxels) and the decoding, not the reading or the matching.
    """
    settings = config.to_dict() if config else VoxelConfig.default_settings()
    outside: Counter = Counter()
    batches: dict[tuple[str, ...], list[int]] = defaultdict(list)
    canonical = {}
    configs: dict[tuple[str, ...], VoxelConfig] = {}
    encode_seconds = 0.0
    for index, structure in enumerate(structures):
        symbols = tuple(elements) if elements else own_elements(structure)
        if symbols not in configs:
            configs[symbols] = VoxelConfig.from_dict({**settings, "elements": symbols})
        start = time.perf_counter()
        try:
            crystal = canonical_crystal(structure, configs[symbols])
            check_representable(crystal, configs[symbols])
        except OutsideLimits as exception:
            outside[exception.reason] += 1
            continue
        except RepresentationError as exception:
            raise RepresentationError(
                f"Structure {index} ({structure.composition.reduced_formula}): {exception}"
            ) from None
        finally:
            encode_seconds += time.perf_counter() - start
        canonical[index] = crystal
        batches[symbols].append(index)

    matcher = StructureMatcher(**MATCHER_SETTINGS)
    failures: Counter = Counter()
    matched = decoded_count = 0
    decode_seconds = 0.0
    chunks = [
        (symbols, members[i : i + batch_size])
        for symbols, members in batches.items()
        for i in range(0, len(members), batch_size)
    ]
    for symbols, chunk in chunks if progress is None else progress(chunks):
        crystals = [canonical[i] for i in chunk]
        start = time.perf_counter()
        sites, lattices = site_voxels(crystals, configs[symbols]), lattice_voxels(crystals, configs[symbols])
        encode_seconds += time.perf_counter() - start
        start = time.perf_counter()
        results = decode_batch(sites, lattices, configs[symbols])
        decode_seconds += time.perf_counter() - start
        decoded_count += len(results)
        for index, result in zip(chunk, results):
            if result.failure is not None:
                failures[result.failure.value] += 1
            elif matcher.fit(structures[index], result.structure):
                matched += 1
            else:
                failures["no_match"] += 1
    within = len(canonical)
    return {
        "n": len(structures),
        "within_limits": within,
        "coverage": round(within / len(structures), 6) if structures else 0.0,
        "outside_limits": dict(outside),
        "matched": matched,
        "match_rate": round(matched / within, 6) if within else 0.0,
        "failures": dict(failures),
        "encode_structures_per_s": round(within / encode_seconds, 1) if encode_seconds else None,
        "decode_structures_per_s": round(decoded_count / decode_seconds, 1) if decode_seconds else None,
        "matcher": MATCHER_SETTINGS,
        "representation": settings | {"elements": list(elements) if elements else "per structure"},
    }
