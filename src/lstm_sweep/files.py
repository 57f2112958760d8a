"""Files written whole or not at all: each is written beside its place under a name of its
own, then renamed over it, so a reader, a kill or a full disk never leaves half a file, and
two writers never mix their bytes. A write that fails removes its temporary file.

Every result the project writes goes through here: run records (status.json, metrics.json,
.hydra/), vocab.json, sweep.json and the report's files. Checkpoints go through
run/resume.py's AtomicCheckpointIO, which also uses `replacing`.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

import yaml


@contextmanager
def replacing(path: str | Path, binary: bool = False, fsync: bool = False) -> Iterator[IO]:
    """A file open for writing that replaces `path` when the block ends without an error."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # os.open with 0o666 keeps the umask's permissions (tempfile.mkstemp would make it 0600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb" if binary else "w", encoding=None if binary else "utf-8") as f:
            yield f
            f.flush()
            if fsync:  # on disk before it replaces the previous version
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with suppress(OSError):
            tmp.unlink()
        if isinstance(err, OSError) and err.filename is None:  # a failed write names no file: name it
            err.filename = str(path)
        raise


def write_text(path: str | Path, text: str) -> None:
    with replacing(path) as f:
        f.write(text)


def write_json(path: str | Path, data: object, **dumps) -> None:
    """Strict JSON (no NaN or Infinity, which other readers refuse), written whole."""
    write_text(path, json.dumps(data, indent=2, allow_nan=False, **dumps) + "\n")


def cannot_write(folder: str | Path) -> str | None:
    """Why files cannot be made in `folder` — its nearest existing part is read-only or not
    ours — or None: asked before the work whose results would go there."""
    existing = Path(folder).absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"cannot write in {existing} (a file, not a folder)"
    if os.access(existing, os.W_OK | os.X_OK):
        return None
    reason = "read-only file system" if os.statvfs(existing).f_flag & os.ST_RDONLY else "permission denied"
    return f"cannot write in {existing} ({reason})"


def read_yaml(path: str | Path):
    """A YAML file as plain Python, typed as OmegaConf types it (`1e-3` a float) but read by
    libyaml's parser: a sweep's 2,000 runs hold 6,000 such files, and OmegaConf.load's pure
    Python parser and config nodes take a minute and a half for them."""
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=_yaml_loader())


@functools.cache
def _yaml_loader() -> type:
    from omegaconf._utils import get_yaml_loader

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml where PyYAML was built with it

    class Loader(base):  # type: ignore[misc, valid-type]
        # OmegaConf's implicit types: `1e-3` a float, a date a string
        yaml_implicit_resolvers = get_yaml_loader().yaml_implicit_resolvers

    return Loader
