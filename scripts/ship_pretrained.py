"""Ship the autoencoders of a finished training run as a pretrained set (``aiida_ccdcgan/resources/pretrained/<name>``).

    python benchmarks/bench_models.py --output /tmp/models-fast        # train the `fast` protocol on V–O
    python scripts/ship_pretrained.py /tmp/models-fast vo-fast         # copy its autoencoders with a record

Copies the four autoencoder ``.keras`` files of a ``ccdcgan-train`` output folder and writes ``record.json``: the
representation (without the elements: the weights do not depend on them) and autoencoder settings, the data and
split the run used, its held-out reconstruction, the Keras version and backend, and the sha256 of every file,
which :func:`aiida_ccdcgan.models.pretrained.load_pretrained` checks before loading.
"""

import argparse
import datetime
import json
import shutil
from pathlib import Path

from aiida_ccdcgan.models.pretrained import PRETRAINED, file_sha256

FILES = ("site_encoder", "site_decoder", "lattice_encoder", "lattice_decoder")


def main() -> None:
    """Copy the autoencoders of a training output folder into the package with their record."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="A ccdcgan-train output folder (config.json, metrics.json, *.keras).")
    parser.add_argument("name", help="Name of the pretrained set, e.g. vo-fast.")
    parser.add_argument("--data", default="V–O (vo_imatgen_dft.csv.gz), split 90/10 by template with seed 0")
    args = parser.parse_args()
    metrics = json.loads((args.run / "metrics.json").read_text())
    config = metrics["config"]
    target = PRETRAINED / args.name
    target.mkdir(parents=True, exist_ok=True)
    sha256 = {}
    for name in FILES:
        shutil.copyfile(args.run / f"{name}.keras", target / f"{name}.keras")
        sha256[f"{name}.keras"] = file_sha256(target / f"{name}.keras")
    representation = {k: v for k, v in config["representation"].items() if k != "elements"}
    autoencoders = metrics["stages"]["autoencoders"]
    train = metrics["dataset"]["train"]
    used = {
        kind: min(train, config[f"{kind}_autoencoder"].get("max_structures") or train) for kind in ("site", "lattice")
    }
    record = {
        "name": args.name,
        "created": datetime.date.today().isoformat(),
        "trained_on": {
            "elements": config["representation"]["elements"],
            "data": args.data,
            **metrics["dataset"],
            "autoencoder_structures": used,
        },
        "representation": representation,
        "site_autoencoder": config["site_autoencoder"],
        "lattice_autoencoder": config["lattice_autoencoder"],
        "seed": config["seed"],
        "reconstruction_validation": autoencoders["reconstruction_validation"],
        "training_seconds": autoencoders["seconds"],
        "keras": metrics["keras_version"],
        "backend": metrics["backend"],
        "sha256": sha256,
    }
    (target / "record.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    print(f"shipped {args.name} to {target}")


if __name__ == "__main__":
    main()
