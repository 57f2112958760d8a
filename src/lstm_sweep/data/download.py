"""Fetching a public corpus once into the cache: checksums, resumable retries, progress.

`data.download` names a base URL and the files with their md5 sums. Each file is fetched
into `<cache_dir>/<corpus name>/` beside a `.part` file that a retry resumes with an HTTP
Range request (or restarts, if the server ignores it), then checked against its md5 and
renamed into place. A file already there with the right sum is never fetched again; a
wrong sum is fetched once more and then reported. Offline, the error says where to put
the files instead.
"""

from __future__ import annotations

import hashlib
import logging
import time
import urllib.error
import urllib.request
from http.client import HTTPException
from pathlib import Path

from tqdm import tqdm

from lstm_sweep.errors import DataError

log = logging.getLogger(__name__)

CHUNK = 1 << 16


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _transfer(url: str, part: Path, timeout: float) -> None:
    """Append the rest of `url` to `part`, resuming from its current size."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if offset and response.status != 206:  # the server ignored the range: start over
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        with (
            part.open("ab" if offset else "wb") as out,
            tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, desc=part.name[:-5], leave=False, disable=None
            ) as bar,
        ):
            while block := response.read(CHUNK):
                out.write(block)
                bar.update(len(block))
        if total is not None and part.stat().st_size < total:
            raise HTTPException(f"connection closed after {part.stat().st_size} of {total} bytes")


def fetch(url: str, target: Path, md5: str, retries: int = 4, timeout: float = 30.0, backoff: float = 1.0) -> Path:
    """`url` into `target`, verified against `md5`; retried with growing pauses, resumed."""
    if target.exists() and md5sum(target) == md5:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    mismatches, last_error = 0, None
    for attempt in range(retries):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))  # be polite to a struggling server
        try:
            log.info("downloading %s", url)
            _transfer(url, part, timeout)
        except urllib.error.HTTPError as err:
            if err.code == 416:  # the part file is already complete (or longer): check it
                pass
            elif 400 <= err.code < 500:
                raise DataError(f"could not download {url}: HTTP {err.code} {err.reason}") from None
            else:
                last_error = f"HTTP {err.code} {err.reason}"
                continue
        except (urllib.error.URLError, HTTPException, OSError) as err:
            last_error = str(getattr(err, "reason", err))
            log.warning("download of %s interrupted (%s); retrying", url, last_error)
            continue
        actual = md5sum(part)
        if actual == md5:
            part.replace(target)
            return target
        mismatches += 1
        part.unlink()
        last_error = f"md5 {actual}, expected {md5}"
        if mismatches >= 2:
            break
        log.warning("%s: checksum mismatch (%s); downloading it again", url, last_error)
    if mismatches:
        raise DataError(f"{url} does not match its checksum ({last_error}); the file was not kept")
    raise DataError(
        f"could not download {url} after {retries} attempts ({last_error}). Offline? "
        f"Put the file at {target} yourself, or point data.root at a folder holding the corpus."
    )


def fetch_corpus(name: str, download, cache_dir: str | Path) -> Path:
    """The corpus folder for `data.download` (base `url`, `files`: {name: md5}), fetched on first use."""
    folder = Path(cache_dir).expanduser() / name
    for filename, md5 in download.files.items():
        fetch(
            download.url.rstrip("/") + "/" + filename,
            folder / filename,
            md5,
            retries=download.retries,
            timeout=download.timeout,
        )
    return folder
