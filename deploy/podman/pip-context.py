"""pip's configuration on this machine, for pip inside `podman build`.

Usage: python3 pip-context.py OUT.conf
Writes the configuration pip uses here (its config files, lowest precedence first, then
the PIP_* variables) into OUT.conf as one file, and prints one `podman build` option per
line: OUT.conf mounted as the build's /etc/pip.conf, and every local file or folder the
configuration names (a CA bundle, a constraints file, file:// indexes, find-links
folders) mounted read-only at the same path. Behind a proxy with its own CA, or with a
local index, pip in the build then reaches exactly what pip here reaches.
Standard library only: it runs with the host's python3 before any virtualenv exists.
"""

from __future__ import annotations

import configparser
import os
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse


def config_files() -> list[Path]:
    """The files pip reads, lowest precedence first (pip's own order on Linux)."""
    xdg_dirs = os.environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(os.pathsep)
    home = Path.home()
    files = [Path(d) / "pip" / "pip.conf" for d in reversed(xdg_dirs) if d]
    files += [Path("/etc/pip.conf"), home / ".pip" / "pip.conf",
              Path(os.environ.get("XDG_CONFIG_HOME", home / ".config")) / "pip" / "pip.conf"]
    if os.environ.get("PIP_CONFIG_FILE"):
        files.append(Path(os.environ["PIP_CONFIG_FILE"]))
    return [f for f in files if f.is_file()]


def merged() -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    for path in config_files():
        config.read(path)
    environment = {name[4:].lower().replace("_", "-"): value
                   for name, value in os.environ.items()
                   if name.startswith("PIP_") and name != "PIP_CONFIG_FILE"}
    if not config.has_section("global"):
        config.add_section("global")
    for key, value in environment.items():
        for section in config.sections():
            config.remove_option(section, key)
        config.set("global", key, value)
    return config


def local_paths(config: configparser.ConfigParser) -> set[Path]:
    """Local files and folders the configuration points at."""
    found: set[Path] = set()
    for section in config.sections():
        for key, value in config.items(section):
            for word in value.split():
                if word.startswith("file://"):
                    path = Path(unquote(urlparse(word).path))
                    # a PEP 503 index links to its files relative to the folder above simple/
                    if key.endswith("index-url") and path.name == "simple":
                        path = path.parent
                elif word.startswith("/"):
                    path = Path(word)
                else:
                    continue
                if path.exists():
                    found.add(path)
    return found


def main(out: str) -> None:
    config = merged()
    with open(out, "w") as stream:
        config.write(stream)
    print(f"--volume={out}:/etc/pip.conf:ro")
    for path in sorted(local_paths(config)):
        print(f"--volume={path}:{path}:ro")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: pip-context.py OUT.conf")
    main(sys.argv[1])
