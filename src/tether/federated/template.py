"""`tether init --example federated`: the health-risk project across three hospitals.

Writes the policy, the trainer, the Flower app (`app/`) and, for each hospital, the data
its SuperNode will name in its node config (`sites/<hospital>/train.csv`, and
`recent.csv` for the data summaries). In a real deployment each hospital keeps its own
files; they sit together here so that one machine can run the whole federation.
"""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from tether.errors import ConfigError
from tether.example.health import generate

__all__ = ["SITES", "site_files", "write_template"]

SITES = ("hospital_01", "hospital_02", "hospital_03")
SITE_ROWS = 600
RECENT_ROWS = 500


def _files(folder: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    found = []
    for item in folder.iterdir():
        if item.name == "__pycache__":
            continue
        if item.is_dir():
            found += _files(item, f"{prefix}{item.name}/")
        else:
            found.append((prefix + item.name, item))
    return found


def site_files(directory: Path, site: str) -> dict[str, str]:
    """The node config a site's SuperNode runs with (paths to its own data)."""
    folder = directory.resolve() / "sites" / site
    return {"data-path": str(folder / "train.csv"), "recent-path": str(folder / "recent.csv")}


def write_site_data(directory: Path, site: str, *, seed: int = 1, shift: float = 0.0,
                    rows: int = SITE_ROWS, train_shift: float = 0.0) -> None:
    """A hospital's training data and its recent week (`shift`: how far the recent week
    drifted; `train_shift`: how far the rows the site trains on did)."""
    paths = site_files(directory, site)
    Path(paths["data-path"]).parent.mkdir(parents=True, exist_ok=True)
    generate(site, rows, seed=seed, shift=train_shift).to_csv(paths["data-path"],
                                                             index=False)
    generate(site, RECENT_ROWS, seed=seed + 1000, shift=shift).to_csv(
        paths["recent-path"], index=False)


def write_template(directory: Path, force: bool = False) -> list[Path]:
    """Write the project into `directory`; ConfigError if a file exists and not `force`."""
    source = resources.files("tether.example") / "federated"
    files = _files(source)
    targets = [directory / name for name, _ in files]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        raise ConfigError(f"{existing[0]}: already exists; pass --force to overwrite it")
    written = []
    for (_, item), target in zip(files, targets, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(item.read_bytes())
        written.append(target)
    for site in SITES:
        write_site_data(directory, site)
        written += [Path(p) for p in site_files(directory, site).values()]
    return written
