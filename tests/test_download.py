"""The corpus downloader against an HTTP server on 127.0.0.1 serving files this test writes."""

import hashlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from omegaconf import OmegaConf

from lstm_sweep.data.config import DownloadConfig
from lstm_sweep.data.download import fetch, fetch_corpus
from lstm_sweep.errors import DataError

BODY = ("the quick brown fox jumps over the lazy dog\n" * 4000).encode()
MD5 = hashlib.md5(BODY).hexdigest()


class Server:
    """Serves `files`; `drop` names paths whose first response is cut off half-way."""

    def __init__(self, files: dict[str, bytes], drop=(), ignore_range=False):
        self.files, self.drop, self.ignore_range = files, set(drop), ignore_range
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_GET(self):
                name = self.path.lstrip("/")
                server.requests.append((name, self.headers.get("Range")))
                if name not in server.files:
                    self.send_error(404, "Not Found")
                    return
                body, start = server.files[name], 0
                if self.headers.get("Range") and not server.ignore_range:
                    start = int(self.headers["Range"].split("=")[1].rstrip("-"))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if name in server.drop:
                    server.drop.discard(name)
                    self.wfile.write(body[start : start + (len(body) - start) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)  # the connection drops mid-file
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(*args, **kwargs):
        servers.append(Server(*args, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_downloads_verifies_and_then_reuses_the_file(serve, tmp_path):
    server = serve({"ptb.train.txt": BODY})
    target = fetch(f"{server.url}/ptb.train.txt", tmp_path / "ptb.train.txt", MD5, backoff=0)
    assert target.read_bytes() == BODY and not (tmp_path / "ptb.train.txt.part").exists()
    fetch(f"{server.url}/ptb.train.txt", tmp_path / "ptb.train.txt", MD5, backoff=0)
    assert len(server.requests) == 1  # verified on disk, not fetched again


def test_a_dropped_connection_is_resumed_where_it_stopped(serve, tmp_path):
    server = serve({"f.txt": BODY}, drop={"f.txt"})
    fetch(f"{server.url}/f.txt", tmp_path / "f.txt", MD5, backoff=0)
    assert (tmp_path / "f.txt").read_bytes() == BODY
    assert server.requests[0] == ("f.txt", None)
    assert server.requests[1] == ("f.txt", f"bytes={len(BODY) // 2}-")


def test_a_server_ignoring_ranges_makes_it_start_over(serve, tmp_path):
    server = serve({"f.txt": BODY}, drop={"f.txt"}, ignore_range=True)
    fetch(f"{server.url}/f.txt", tmp_path / "f.txt", MD5, backoff=0)
    assert (tmp_path / "f.txt").read_bytes() == BODY


def test_a_corrupted_file_is_refused_and_not_kept(serve, tmp_path):
    corrupted = BODY[:-10] + b"0123456789"
    server = serve({"f.txt": corrupted})
    with pytest.raises(
        DataError,
        match=f"f.txt does not match its checksum \\(md5 {hashlib.md5(corrupted).hexdigest()}, expected {MD5}\\)",
    ):
        fetch(f"{server.url}/f.txt", tmp_path / "f.txt", MD5, backoff=0)
    assert not (tmp_path / "f.txt").exists() and not (tmp_path / "f.txt.part").exists()
    assert len(server.requests) == 2  # fetched once more before giving up


def test_a_missing_file_fails_at_once(serve, tmp_path):
    server = serve({})
    with pytest.raises(DataError, match="HTTP 404"):
        fetch(f"{server.url}/nope.txt", tmp_path / "nope.txt", MD5, backoff=0)
    assert len(server.requests) == 1


def test_offline_says_so_and_what_to_do(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError, match=r"could not download .* after 2 attempts .* Offline\? .*data.root"):
        fetch(f"http://127.0.0.1:{port}/f.txt", tmp_path / "f.txt", MD5, retries=2, backoff=0)


def test_fetch_corpus_fills_the_cache_folder(serve, tmp_path):
    files = {f"ptb.{s}.txt": BODY for s in ("train", "valid", "test")}
    server = serve(files)
    download = OmegaConf.merge(
        OmegaConf.structured(DownloadConfig),
        {"url": server.url + "/", "files": dict.fromkeys(files, MD5), "retries": 2},
    )
    folder = fetch_corpus("ptb", download, tmp_path)
    assert folder == tmp_path / "ptb" and sorted(p.name for p in folder.iterdir()) == sorted(files)
