"""download(): a local http.server on 127.0.0.1 serves a generated zip (never the internet)."""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from zslkit.data.download import download, resolve
from zslkit.errors import ConfigError, DataError


def _archive() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("xlsa17/data/TOY/att_splits.mat", b"not really a mat file" * 50)
        zf.writestr("xlsa17/data/TOY/res101.mat", bytes(range(256)) * 40)
    return buf.getvalue()


class _Server:
    def __init__(self, payload: bytes, honour_range: bool = True):
        self.payload = payload
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.requests.append({"path": self.path, "range": self.headers.get("Range")})
                if self.path == "/missing.zip":
                    self.send_error(404)
                    return
                data, start = outer.payload, 0
                rng = self.headers.get("Range")
                if rng and honour_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


PAYLOAD = _archive()
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_full_download_extracts_and_records_checksum(tmp_path):
    with _Server(PAYLOAD) as srv:
        res = download("toy", tmp_path, url=f"{srv.url}/toy.zip", progress=False)
    assert res["sha256"] == SHA and not res["verified"]
    assert (tmp_path / "toy.zip").read_bytes() == PAYLOAD
    assert (tmp_path / "toy.zip.sha256").read_text().split()[0] == SHA
    assert (tmp_path / "xlsa17" / "data" / "TOY" / "res101.mat").read_bytes() == bytes(range(256)) * 40
    assert not (tmp_path / "toy.zip.part").exists()


def test_resume_from_partial_file(tmp_path):
    cut = len(PAYLOAD) // 3
    (tmp_path / "toy.zip.part").write_bytes(PAYLOAD[:cut])
    with _Server(PAYLOAD) as srv:
        res = download("toy", tmp_path, url=f"{srv.url}/toy.zip", sha256=SHA, progress=False)
        assert srv.requests[-1]["range"] == f"bytes={cut}-"
    assert res["verified"] and (tmp_path / "toy.zip").read_bytes() == PAYLOAD


def test_resume_when_server_ignores_range(tmp_path):
    (tmp_path / "toy.zip.part").write_bytes(b"garbage!" * 10)
    with _Server(PAYLOAD, honour_range=False) as srv:
        download("toy", tmp_path, url=f"{srv.url}/toy.zip", sha256=SHA, progress=False)
    assert (tmp_path / "toy.zip").read_bytes() == PAYLOAD


def test_complete_part_file_416(tmp_path):
    (tmp_path / "toy.zip.part").write_bytes(PAYLOAD)
    with _Server(PAYLOAD) as srv:
        res = download("toy", tmp_path, url=f"{srv.url}/toy.zip", progress=False, extract=False)
    assert res["sha256"] == SHA and res["extracted_to"] is None


def test_checksum_mismatch(tmp_path):
    with _Server(PAYLOAD) as srv:
        with pytest.raises(DataError) as e:
            download("toy", tmp_path, url=f"{srv.url}/toy.zip", sha256="0" * 64, progress=False)
    msg = str(e.value)
    assert "toy.zip" in msg and "sha256" in msg and "checksum mismatch" in msg and SHA in msg
    assert not (tmp_path / "toy.zip").exists() and not (tmp_path / "toy.zip.part").exists()


def test_http_error_and_bad_archive(tmp_path):
    with _Server(PAYLOAD) as srv:
        with pytest.raises(DataError) as e:
            download("toy", tmp_path, url=f"{srv.url}/missing.zip", progress=False)
        assert "404" in str(e.value)
    with _Server(b"plain text, not an archive") as srv:
        with pytest.raises(DataError) as e:
            download("toy", tmp_path / "b", url=f"{srv.url}/x.zip", progress=False)
        assert "neither a zip nor a tar" in str(e.value)


def test_known_names():
    url, sha = resolve("AWA2")
    assert url.endswith("/xlsa17.zip") and sha is None
    assert resolve("cub", sha256="ab")[1] == "ab"
    with pytest.raises(ConfigError, match="FLO"):
        resolve("FLO")
    with pytest.raises(ConfigError, match="unknown"):
        resolve("imagenet")
