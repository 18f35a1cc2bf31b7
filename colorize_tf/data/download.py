"""Image archives on local disk: downloaded once, checked, extracted once (``ensure_archive``).

An ``Archive`` names its URLs (mirrors of the same bytes, tried in order), its size, its
checksums (a whole-file SHA-256 and / or the MD5 of its first MiB) and the folder inside it that
holds the images. ``ensure_archive(archive, DIR)`` makes ``DIR/NAME`` once:

- download into ``ARCHIVE.part`` (e.g. ``test2017.zip.part``) with a progress bar (tqdm, else a
  text line), plain ``urllib`` with a timeout, a User-Agent and redirects; an interrupted
  ``.part`` is resumed with an HTTP Range request (a server that ignores Range sends it whole);
- check size and checksums; a failed check is an error naming the URL and the file, and the
  ``.part`` is deleted;
- extract the image files below the archive's folder into a hidden folder, checking each zip
  member's CRC-32 (or the gzip CRC-32 of a whole ``.tgz``), and publish it as ``DIR/NAME`` with
  one rename and a marker file inside: a ``DIR/NAME`` that exists is complete;
- delete the ``.part`` (``keep_archive``: rename it to ``ARCHIVE``).

An ``ARCHIVE`` already in ``DIR`` (say, copied from Drive) is checked and used instead of a
download, and kept. Files this code did not write are never replaced or deleted: a folder in
the way, or an archive that fails its check, is an error naming it. Free disk is checked first
(archive + images). An advisory lock keeps two processes off the same ``.part``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import http.client
import json
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator

from colorize_tf.data.spec import IMAGE_EXTENSIONS

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 20.0  # per connection attempt and per stalled read
RETRIES = 4  # reconnections (resumed with Range) after a transfer that made progress
MARKER = ".colorize_tf-download.json"
CHUNK = 1 << 20
USER_AGENT = f"colorize_tf Python-urllib/{sys.version_info[0]}.{sys.version_info[1]}"


class DownloadError(ValueError):
    """A download or an archive that failed (a ValueError: commands report it like bad input)."""


class ArchiveDamaged(DownloadError):
    """An archive that passed its file checks but not extraction (CRC, count, member names)."""


@dataclasses.dataclass(frozen=True)
class Archive:
    """One image archive: where it lives, how to check it, where its images sit inside."""

    name: str  # the folder its images go to, under the download directory
    urls: tuple[str, ...]  # tried in order: mirrors of the same bytes
    size: int  # bytes
    sha256: str | None = None  # of the whole file
    md5_first_mib: str | None = None  # of its first 2**20 bytes (fast.ai's published check)
    images: int | None = None  # image files expected inside, if published
    prefix: str = ""  # folder inside the archive that holds the images ("" = anywhere)

    @property
    def filename(self) -> str:
        """The archive's file name, from its first URL (e.g. ``test2017.zip``)."""
        return self.urls[0].rstrip("/").rsplit("/", 1)[-1]


def ensure_archive(
    archive: Archive,
    directory: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    progress: bool = True,
    keep_archive: bool = False,
) -> str:
    """``directory/archive.name``, holding the archive's images: made once, then reused.

    Downloads into ``ARCHIVE.part`` (resuming what is there), checks size and checksums, extracts
    the images below ``archive.prefix`` into a hidden folder and renames it into place. Raises
    ``DownloadError`` naming the URL and the file when a download or a check fails.
    """
    directory = os.path.abspath(os.path.expanduser(directory))
    final = os.path.join(directory, archive.name)
    if _is_complete(final, archive):
        return final
    os.makedirs(directory, exist_ok=True)
    with _locked(os.path.join(directory, f".{archive.name}.lock")):
        if _is_complete(final, archive):  # another process finished while we waited
            return final
        if os.path.lexists(final):
            raise DownloadError(
                f"{final} exists but was not made by this download (no {MARKER} inside); it is "
                f"left alone: move it, pick another directory, or use it as a folder source"
            )
        for stale in os.listdir(directory):  # extractions that a killed run left behind
            if stale.startswith(f".{archive.name}.extracting-"):
                shutil.rmtree(os.path.join(directory, stale), ignore_errors=True)
        path = os.path.join(directory, archive.filename)
        if os.path.exists(path):  # the user's (or a kept) archive: checked, used, never deleted
            _check_disk(directory, archive.size, path)
            try:
                _verify(path, archive, "", _sha256(path).hexdigest() if archive.sha256 else None)
            except DownloadError as e:
                raise DownloadError(f"{e}; it is left alone: move it away to download again") from e
            _extract(path, archive, final, path, progress)
            return final
        # Ours until extracted: only a checked .part is ever extracted, so a crash anywhere
        # leaves a .part to resume or re-check, and no file named like the archive.
        part = path + ".part"
        url = _download(archive, part, timeout_s, progress)
        try:
            _extract(part, archive, final, url, progress)
        except ArchiveDamaged:
            os.remove(part)  # ours and unusable; other failures (disk full) keep it
            raise
        if keep_archive:
            os.replace(part, path)
        else:
            os.remove(part)
    return final


# --- download ------------------------------------------------------------------------------


def _download(archive: Archive, part: str, timeout_s: float, progress: bool) -> str:
    """Fill ``part`` from the first URL that answers; check it. Returns the URL used."""
    failures = []
    for url in archive.urls:
        have = os.path.getsize(part) if os.path.exists(part) else 0
        log.info(
            "downloading %s (%.2f GB%s) from %s into %s", archive.name, archive.size / 1e9,
            f", resuming at {have / 1e9:.2f} GB" if have else "", url, os.path.dirname(part),
        )  # fmt: skip
        try:
            digest = _fetch(url, part, archive, timeout_s, progress)
        except DownloadError as e:
            failures.append(str(e))
            continue
        try:
            _verify(part, archive, url, digest)
        except DownloadError:
            os.remove(part)  # ours and wrong: the next run starts again
            raise
        return url
    raise DownloadError(f"could not download {archive.name} into {part}: " + "; ".join(failures))


def _fetch(url: str, part: str, archive: Archive, timeout_s: float, progress: bool) -> str | None:
    """Append the missing bytes of ``url`` to ``part``; the SHA-256 of the whole (if wanted)."""
    have = os.path.getsize(part) if os.path.exists(part) else 0
    if have > archive.size:  # not a prefix of this archive: ours, start over
        os.remove(part)
        have = 0
    _check_disk(os.path.dirname(part), 2 * archive.size - have, part)
    hasher = (_sha256(part) if have else hashlib.sha256()) if archive.sha256 else None
    retries = RETRIES
    with _progress_bar(archive, have, progress) as bar:
        while have < archive.size:
            headers = {"User-Agent": USER_AGENT}
            if have:
                headers["Range"] = f"bytes={have}-"
            try:
                response = urllib.request.urlopen(
                    urllib.request.Request(url, headers=headers), timeout=timeout_s
                )
            except urllib.error.HTTPError as e:
                if e.code == 416 and have:  # the server has no more bytes: let the checks judge
                    break
                raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from e
            except (urllib.error.URLError, OSError) as e:
                reason = getattr(e, "reason", e)
                raise DownloadError(f"cannot reach {url} ({reason}); offline?") from e
            with response:
                if have and response.status != 206:  # Range ignored: the whole file again
                    have = 0
                    hasher = hashlib.sha256() if archive.sha256 else None
                    bar(None)
                where = response.headers.get("Content-Range", f"bytes {have}-")
                if not where.startswith(f"bytes {have}-"):
                    raise DownloadError(f"{url} answered a Range from byte {have:,} with {where}")
                length = response.headers.get("Content-Length")
                if length is not None and int(length) != archive.size - have:
                    raise DownloadError(
                        f"{url} sends {int(length):,} bytes from offset {have:,}, expected "
                        f"{archive.size - have:,}: not the archive of {archive.size:,} bytes "
                        "this code knows (changed upstream?)"
                    )
                start = have
                try:
                    with open(part, "ab" if have else "wb") as f:
                        while chunk := response.read(CHUNK):
                            f.write(chunk)
                            if hasher is not None:
                                hasher.update(chunk)
                            have += len(chunk)
                            bar(len(chunk))
                except (OSError, http.client.HTTPException) as e:  # resume if it made progress
                    if have == start or retries == 0:
                        raise DownloadError(f"{url}: transfer failed at byte {have:,} ({e})") from e
                    retries -= 1
                    time.sleep(1.0)
                    continue
                if have == start:
                    break  # an empty answer: the checks will say what is wrong
    return hasher.hexdigest() if hasher is not None else None


def _verify(path: str, archive: Archive, url: str, sha256: str | None) -> None:
    """Size, then the whole-file SHA-256 (``sha256``: the file's) or the first MiB's MD5."""
    size = os.path.getsize(path)
    problems = []
    if size != archive.size:
        problems.append(f"{size:,} bytes, expected {archive.size:,}")
    elif archive.sha256 and sha256 != archive.sha256:
        problems.append(f"SHA-256 {sha256}, expected {archive.sha256}")
    elif archive.md5_first_mib:
        with open(path, "rb") as f:
            md5 = hashlib.md5(f.read(1 << 20), usedforsecurity=False).hexdigest()
        if md5 != archive.md5_first_mib:
            problems.append(f"MD5 of the first MiB {md5}, expected {archive.md5_first_mib}")
    if problems:
        origin = f" (from {url})" if url else ""
        raise DownloadError(f"{path}{origin} fails its check: {problems[0]}")


def _sha256(path: str):
    """A hashlib SHA-256 object fed with the file's bytes (update it to go on)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h


def _check_disk(directory: str, need: int, path: str) -> None:
    free = shutil.disk_usage(directory).free
    if free < need:
        raise DownloadError(
            f"{path} needs {need / 1e9:.1f} GB free in {directory} (the archive and its "
            f"extracted images), {free / 1e9:.1f} GB are: free space or pick another directory"
        )


# --- extraction ----------------------------------------------------------------------------


def _is_complete(final: str, archive: Archive) -> bool:
    try:
        with open(os.path.join(final, MARKER)) as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return False
    return marker.get("size") == archive.size and marker.get("sha256") == archive.sha256


def _members(path: str, archive: Archive) -> Iterator[tuple[str, object]]:
    """(relative name, readable file) for each image file below ``archive.prefix``."""
    prefix = archive.prefix

    def wanted(name: str) -> str | None:
        if not name.startswith(prefix) or not name.lower().endswith(IMAGE_EXTENSIONS):
            return None
        rel = name[len(prefix) :]
        parts = rel.split("/")
        if any(p in ("", ".", "..") or "\\" in p for p in parts) or ":" in parts[0]:
            raise ArchiveDamaged(f"{path}: unsafe member name {name!r}")
        return rel

    if archive.filename.lower().endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                rel = None if info.is_dir() else wanted(info.filename)
                if rel:
                    with zf.open(info) as src:  # reading to the end checks its CRC-32
                        yield rel, src
        return
    with gzip.open(path, "rb") as gz, tarfile.open(fileobj=gz, mode="r|") as tar:
        for member in tar:
            rel = wanted(member.name) if member.isfile() else None
            if rel:
                yield rel, tar.extractfile(member)
        while gz.read(CHUNK):  # to the end of the stream: gzip checks its CRC-32 and length
            pass


def _extract(path: str, archive: Archive, final: str, url: str, progress: bool) -> None:
    """Images of ``path`` -> a hidden folder -> one rename to ``final``; nothing on failure."""
    parent = os.path.dirname(final)
    _check_disk(parent, archive.size, path)
    tmp = tempfile.mkdtemp(prefix=f".{archive.name}.extracting-", dir=parent)
    count = 0
    try:
        with _progress_bar(archive, 0, progress, unit="image", total=archive.images) as bar:
            for rel, src in _members(path, archive):
                target = os.path.join(tmp, *rel.split("/"))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
                count += 1
                bar(1)
        if count == 0 or (archive.images and count != archive.images):
            expected = f"{archive.images:,}" if archive.images else "at least one"
            raise ArchiveDamaged(
                f"{path} (from {url}) holds {count:,} image files below {archive.prefix!r}, "
                f"expected {expected}"
            )
        with open(os.path.join(tmp, MARKER), "w") as f:
            json.dump(
                {"url": url, "size": archive.size, "sha256": archive.sha256, "images": count}, f
            )
        os.rename(tmp, final)
    except (zipfile.BadZipFile, gzip.BadGzipFile, tarfile.TarError, EOFError, zlib.error) as e:
        raise ArchiveDamaged(f"{path} (from {url}) is damaged: {e}") from e
    except OSError as e:
        raise DownloadError(f"extracting {path} into {parent} failed: {e}") from e
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


# --- small helpers -------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(path: str):
    """An advisory lock, so two processes never write the same ``.part`` (POSIX; else none)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def _progress_bar(archive: Archive, initial: int, enabled: bool, unit="B", total=None):
    """``bar(n)`` advances by n; ``bar(None)`` restarts from 0. tqdm if present, else a line."""
    total = archive.size if unit == "B" else total
    if not enabled:
        yield lambda n: None
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:
        tqdm = None
    if tqdm is not None:
        scale = {"unit_scale": True, "unit_divisor": 1024} if unit == "B" else {}
        with tqdm(total=total, initial=initial, unit=unit, desc=archive.name, **scale) as t:

            def advance(n):
                if n is None:
                    t.reset(total)
                else:
                    t.update(n)

            yield advance
        return
    state = {"done": initial, "shown": 0.0}

    def advance(n):
        state["done"] = 0 if n is None else state["done"] + n
        now = time.monotonic()
        if now - state["shown"] >= 5.0 or (total and state["done"] >= total):
            state["shown"] = now
            of = f" of {total:,}" if total else ""
            print(f"{archive.name}: {state['done']:,}{of} {unit}", file=sys.stderr, flush=True)

    yield advance
