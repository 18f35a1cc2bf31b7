"""The COCO download step (``download`` and ``coco``), offline: archives of a few JPEGs made
here, served by a local HTTP server that honours Range requests (or not), on 127.0.0.1 only.

The published archives themselves (6.6 GB) are never fetched: their sizes and SHA-256 are
checked against the table TensorFlow Datasets ships for the same URLs.
"""

import hashlib
import http.server
import io
import json
import os
import re
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorize_tf.cli import data as data_cli
from colorize_tf.data import coco, download, sources

NAMES = [f"{i:012d}.jpg" for i in (9, 25, 30, 34, 36)]


def jpeg_bytes(seed: int, size: int = 48) -> bytes:
    """A noisy JPEG (noise: barely compressible, so archives keep their size)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=95)
    return out.getvalue()


def make_zip(path: Path, prefix: str = "imgs/", size: int = 48) -> bytes:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(prefix, b"")  # a directory entry, as in the COCO zips
        for i, name in enumerate(NAMES):
            zf.writestr(prefix + name, jpeg_bytes(i, size))
        zf.writestr("README.txt", b"not an image, not extracted")
    return path.read_bytes()


def make_tgz(path: Path, prefix: str, size: int = 48) -> bytes:
    with tarfile.open(path, "w:gz") as tar:
        for i, name in enumerate(NAMES):
            payload = jpeg_bytes(i, size)
            info = tarfile.TarInfo(prefix + name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        notes = b'{"images": []}'
        info = tarfile.TarInfo("coco_sample/annotations/train_sample.json")
        info.size = len(notes)
        tar.addfile(info, io.BytesIO(notes))
    return path.read_bytes()


def archive_for(url: str, payload: bytes, **kwargs) -> download.Archive:
    """The archive entry for ``payload`` served at ``url`` (``kwargs`` override fields)."""
    fields = {"size": len(payload), "sha256": hashlib.sha256(payload).hexdigest(),
              "images": len(NAMES), "prefix": "imgs/"}  # fmt: skip
    return download.Archive("imgs", (url,), **{**fields, **kwargs})


class Server:
    """Serves files of a folder on 127.0.0.1, with Range support that can be switched off;
    records each request's Range header and the body bytes sent."""

    def __init__(self, root: Path):
        self.root, self.ranges, self.sent, self.honour_range = root, [], 0, True
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                path = server.root / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                body = path.read_bytes()
                asked = self.headers.get("Range")
                server.ranges.append(asked)
                start = 0
                if asked and server.honour_range:
                    start = int(re.fullmatch(r"bytes=(\d+)-", asked).group(1))
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                self.wfile.write(body[start:])
                server.sent += len(body) - start

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    s = Server(served)
    yield s
    s.close()


def listing(folder: str) -> list[str]:
    return sorted(os.listdir(folder))


# --- the download step ---------------------------------------------------------------------


def test_downloads_checks_and_extracts_once(server, tmp_path):
    payload = make_zip(server.root / "imgs.zip")
    archive = archive_for(server.url + "imgs.zip", payload)
    dest = tmp_path / "dest"

    folder = download.ensure_archive(archive, str(dest), progress=False)
    assert folder == str(dest / "imgs")
    assert listing(folder) == sorted([download.MARKER, *NAMES])  # images only, prefix stripped
    assert (Path(folder) / NAMES[2]).read_bytes() == jpeg_bytes(2)
    assert json.loads((Path(folder) / download.MARKER).read_text())["images"] == len(NAMES)
    assert server.ranges == [None] and server.sent == len(payload)
    assert sorted(os.listdir(dest)) == [".imgs.lock", "imgs"]  # archive gone, nothing half-done

    stamp = os.stat(Path(folder) / NAMES[0]).st_mtime_ns
    assert download.ensure_archive(archive, str(dest), progress=False) == folder
    assert len(server.ranges) == 1  # the second call asked the server nothing
    assert os.stat(Path(folder) / NAMES[0]).st_mtime_ns == stamp  # and extracted nothing


def test_resumes_a_half_written_part_with_a_range_request(server, tmp_path):
    payload = make_zip(server.root / "imgs.zip")
    dest = tmp_path / "dest"
    dest.mkdir()
    half = len(payload) // 2
    (dest / "imgs.zip.part").write_bytes(payload[:half])

    folder = download.ensure_archive(
        archive_for(server.url + "imgs.zip", payload), str(dest), progress=False, keep_archive=True
    )
    assert server.ranges == [f"bytes={half}-"]
    assert server.sent == len(payload) - half  # only the missing half crossed the wire
    assert (dest / "imgs.zip").read_bytes() == payload  # kept, whole
    assert not (dest / "imgs.zip.part").exists()
    assert listing(folder) == sorted([download.MARKER, *NAMES])


def test_a_server_that_ignores_range_sends_the_whole_file_again(server, tmp_path):
    payload = make_zip(server.root / "imgs.zip")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "imgs.zip.part").write_bytes(payload[:100])
    server.honour_range = False

    folder = download.ensure_archive(archive_for(server.url + "imgs.zip", payload), str(dest),
                                 progress=False)  # fmt: skip
    assert server.ranges == ["bytes=100-"] and server.sent == len(payload)
    assert listing(folder) == sorted([download.MARKER, *NAMES])


def test_a_wrong_checksum_names_url_and_file_and_leaves_no_folder(server, tmp_path):
    payload = make_zip(server.root / "imgs.zip")
    url = server.url + "imgs.zip"
    dest = tmp_path / "dest"
    wrong = archive_for(url, payload, sha256="0" * 64)

    with pytest.raises(download.DownloadError) as err:
        download.ensure_archive(wrong, str(dest), progress=False)
    message = str(err.value)
    assert url in message and str(dest / "imgs.zip.part") in message
    assert hashlib.sha256(payload).hexdigest() in message and "0" * 64 in message
    assert sorted(os.listdir(dest)) == [".imgs.lock"]  # no folder, no .part to trust later


def test_a_wrong_size_from_the_server_fails_before_the_body(server, tmp_path):
    payload = make_zip(server.root / "imgs.zip")
    url = server.url + "imgs.zip"
    bigger = archive_for(url, payload, size=len(payload) + 10)
    with pytest.raises(
        download.DownloadError, match=rf"{re.escape(url)} sends {len(payload):,} bytes"
    ):
        download.ensure_archive(bigger, str(tmp_path / "dest"), progress=False)
    assert not (tmp_path / "dest" / "imgs").exists()


def test_offline_fails_within_seconds_naming_the_url(tmp_path):
    url = "http://127.0.0.1:9/zips/test2017.zip"  # the discard port: nothing listens
    archive = download.Archive("imgs", (url,), 1000, sha256="0" * 64)
    start = time.monotonic()
    with pytest.raises(download.DownloadError, match=re.escape(f"cannot reach {url}")):
        download.ensure_archive(archive, str(tmp_path / "dest"), timeout_s=2.0, progress=False)
    assert time.monotonic() - start < 5.0
    assert not (tmp_path / "dest" / "imgs").exists()


def test_the_next_mirror_is_tried_when_the_first_fails(server, tmp_path):
    payload = make_zip(server.root / "imgs.zip")
    dead = "http://127.0.0.1:9/imgs.zip"
    archive = download.Archive("imgs", (dead, server.url + "imgs.zip"), len(payload),
                           sha256=hashlib.sha256(payload).hexdigest(), prefix="imgs/")  # fmt: skip
    folder = download.ensure_archive(archive, str(tmp_path / "dest"), timeout_s=2.0, progress=False)
    assert (
        json.loads((Path(folder) / download.MARKER).read_text())["url"] == server.url + "imgs.zip"
    )


def test_a_damaged_member_fails_extraction_and_leaves_nothing(server, tmp_path):
    """Without a whole-file checksum (fast.ai publishes only size and the first MiB's MD5),
    the archive's own CRC-32 catches damage beyond the first MiB: zip and gzip alike."""
    for kind in ("zip", "tgz"):
        source = server.root / f"imgs.{kind}"
        make = make_zip if kind == "zip" else make_tgz
        payload = bytearray(make(source, "imgs/", size=700))  # 5 noisy images: ~1.8 MB
        assert len(payload) > 1.5 * 2**20
        payload[1_400_000] ^= 0xFF  # past the first MiB, inside an image
        source.write_bytes(payload)
        archive = download.Archive(
            "imgs", (server.url + source.name,), len(payload),
            md5_first_mib=hashlib.md5(payload[: 2**20]).hexdigest(), prefix="imgs/",
        )  # fmt: skip
        dest = tmp_path / f"dest-{kind}"
        with pytest.raises(download.ArchiveDamaged, match=r"is damaged: .*(CRC|crc|invalid)"):
            download.ensure_archive(archive, str(dest), progress=False)
        assert sorted(os.listdir(dest)) == [".imgs.lock"], kind  # no folder, no hidden tmp


def test_the_sample_layout_keeps_only_its_images(server, tmp_path):
    payload = make_tgz(server.root / "coco_sample.tgz", "coco_sample/train_sample/")
    archive = download.Archive(
        "sample", (server.url + "coco_sample.tgz",), len(payload),
        md5_first_mib=hashlib.md5(payload[: 2**20]).hexdigest(),
        prefix="coco_sample/train_sample/",
    )  # fmt: skip
    folder = download.ensure_archive(archive, str(tmp_path / "dest"), progress=False)
    assert listing(folder) == sorted([download.MARKER, *NAMES])  # annotations left in the archive


def test_files_in_the_way_are_named_and_left_alone(server, tmp_path):
    payload = make_zip(server.root / "imgs.zip")
    archive = archive_for(server.url + "imgs.zip", payload)
    dest = tmp_path / "dest"
    (dest / "imgs").mkdir(parents=True)
    (dest / "imgs" / "mine.jpg").write_bytes(b"the user's")
    with pytest.raises(download.DownloadError, match=rf"{re.escape(str(dest / 'imgs'))} exists"):
        download.ensure_archive(archive, str(dest), progress=False)
    assert (dest / "imgs" / "mine.jpg").read_bytes() == b"the user's" and not server.ranges

    other = tmp_path / "other"
    other.mkdir()
    (other / "imgs.zip").write_bytes(b"not the archive")
    with pytest.raises(download.DownloadError, match=r"imgs.zip fails its check.*left alone"):
        download.ensure_archive(archive, str(other), progress=False)
    assert (other / "imgs.zip").read_bytes() == b"not the archive"

    (other / "imgs.zip").write_bytes(payload)  # the right archive, put there by the user: used
    folder = download.ensure_archive(archive, str(other), progress=False)
    assert listing(folder) == sorted([download.MARKER, *NAMES])
    assert (other / "imgs.zip").read_bytes() == payload and not server.ranges  # and kept


# --- the source string and the command -----------------------------------------------------


def test_source_strings_name_a_set_and_a_directory():
    assert coco.parse_coco_source("coco") == ("test2017", None)
    assert coco.parse_coco_source("coco:sample") == ("sample", None)
    assert coco.parse_coco_source("coco:/data/coco") == ("test2017", "/data/coco")
    assert coco.parse_coco_source("coco:val2017:./coco") == ("val2017", "./coco")
    assert coco.parse_coco_source("coco:~/coco") == ("test2017", "~/coco")
    with pytest.raises(ValueError, match=r"'tset2017' is neither a set .* coco:\./tset2017"):
        coco.parse_coco_source("coco:tset2017")
    for set_name, directory in [("sample", "/x/y"), ("test2017", "/x/y"), ("val2017", None)]:
        text = coco.source_string(set_name, directory)
        assert coco.parse_coco_source(text) == (set_name, directory)


def test_a_coco_source_downloads_once_then_is_a_folder(server, tmp_path, monkeypatch):
    payload = make_zip(server.root / "imgs.zip")
    fixture = archive_for(server.url + "imgs.zip", payload)
    monkeypatch.setitem(coco.COCO_SETS, "test2017", fixture)  # the default set, served here
    monkeypatch.setenv(coco.ENV_DIR, str(tmp_path / "cache"))

    spec = sources.parse_source("coco")
    assert spec == sources.Source("folder", str(tmp_path / "cache" / "imgs"))
    assert len(server.ranges) == 1
    server.close()  # from now on the network is gone
    assert sources.parse_source("coco") == spec
    images = sources.list_images("coco", max_images=3)
    assert [os.path.basename(p) for p in images] == NAMES[:3]


def test_download_command_reports_the_folder_and_the_source(server, tmp_path, monkeypatch, capsys):
    payload = make_zip(server.root / "imgs.zip")
    monkeypatch.setitem(coco.COCO_SETS, "val2017", archive_for(server.url + "imgs.zip", payload))
    dest = tmp_path / "coco"
    assert data_cli.main(["download", "coco", str(dest), "--set", "val2017"]) == 0
    out = capsys.readouterr().out
    assert f"{dest / 'imgs'}: {len(NAMES)} images" in out
    assert f"data.source=coco:val2017:{dest}" in out

    dead = download.Archive("imgs", ("http://127.0.0.1:9/val2017.zip",), 10, sha256="0" * 64)
    monkeypatch.setitem(coco.COCO_SETS, "val2017", dead)
    argv = ["download", "coco", str(tmp_path / "x"), "--set", "val2017", "--timeout", "2"]
    assert data_cli.main(argv) == 2
    assert "cannot reach http://127.0.0.1:9/val2017.zip" in capsys.readouterr().err


# --- the published archives ----------------------------------------------------------------


def test_official_sizes_and_checksums_match_the_tfds_registry():
    """Our table against the one tensorflow-datasets ships (url_checksums/coco.txt): same
    URL, same size, same SHA-256 for each official zip."""
    import tensorflow_datasets

    registry = Path(tensorflow_datasets.__file__).parent / "url_checksums" / "coco.txt"
    if not registry.exists():
        pytest.skip(f"this tensorflow-datasets has no {registry.name}")
    rows = {}
    for line in registry.read_text().splitlines():
        url, size, sha256, *_ = line.split()
        rows[url] = (int(size), sha256)
    for name in ("test2017", "val2017"):
        archive = coco.COCO_SETS[name]
        assert rows[archive.urls[0]] == (archive.size, archive.sha256), name
        assert archive.filename == f"{name}.zip" and archive.prefix == f"{name}/"
