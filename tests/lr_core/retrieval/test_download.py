"""`lr data download` against a file server on 127.0.0.1 serving a zip the test builds itself."""
from __future__ import annotations

import hashlib
import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lr_core.data.beir import load_beir
from lr_core.cli import main
from lr_core.retrieval.download import BEIR_MD5, download_dataset, downloadable, write_beir
from lr_core.errors import ConfigError, DataError


def beir_zip(name: str = "scifact", qrels_split: str = "test", compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        zf.writestr(f"{name}/corpus.jsonl", "".join(
            json.dumps({"_id": f"d{i}", "title": f"t{i}", "text": f"document number {i} " * 50}) + "\n"
            for i in range(200)))
        zf.writestr(f"{name}/queries.jsonl", json.dumps({"_id": "q1", "text": "number 3"}) + "\n")
        zf.writestr(f"{name}/qrels/{qrels_split}.tsv", "query-id\tcorpus-id\tscore\nq1\td3\t1\n")
    return buf.getvalue()


class Files:
    """What the server serves: ``{path: bytes}``; ``cut`` sends only that many bytes of the next response."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut: int | None = None
        self.ranges: list[str | None] = []


@pytest.fixture()
def server():
    files = Files()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            data = files.files.get(self.path)
            files.ranges.append(self.headers.get("Range"))
            if data is None:
                self.send_error(404)
                return
            start = 0
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if files.cut is not None:  # a dropped connection mid-transfer
                body, files.cut = body[:files.cut], None
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    files.url = f"http://127.0.0.1:{httpd.server_address[1]}/beir"
    yield files
    httpd.shutdown()
    httpd.server_close()


def test_download_checks_unpacks_and_is_reused(server, tmp_path, capsys):
    payload = beir_zip()
    server.files["/beir/scifact.zip"] = payload
    md5 = hashlib.md5(payload).hexdigest()
    code = main(["data", "download", "scifact", "--dest", str(tmp_path), "--base-url", server.url, "--md5", md5])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = load_beir(tmp_path / "scifact", split="test")
    assert len(data.corpus) == 200 and data.qrels == {"q1": {"d3": 1}}
    assert not any((tmp_path / ".downloads").iterdir()) and sorted(p.name for p in tmp_path.iterdir()) == [
        ".downloads", "scifact"]
    # complete: no second request
    n = len(server.ranges)
    assert main(["data", "download", "scifact", "--dest", str(tmp_path), "--base-url", server.url]) == 0
    assert len(server.ranges) == n


def test_published_md5_is_checked(server, tmp_path, capsys, monkeypatch):
    """Without --md5 the published BEIR sum applies: a different archive is refused, nothing is left."""
    server.files["/beir/scifact.zip"] = beir_zip()
    monkeypatch.setenv("LR_DOWNLOAD_BASE_URL", server.url)
    monkeypatch.setenv("LR_DATA_DIR", str(tmp_path))
    code = main(["data", "download", "scifact"])
    err = capsys.readouterr().err
    assert code == 2 and BEIR_MD5["scifact"] in err and "Traceback" not in err
    assert not (tmp_path / "scifact").exists() and not list((tmp_path / ".downloads").iterdir())


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    payload = beir_zip()
    server.files["/beir/fiqa.zip"] = payload
    server.cut = len(payload) // 3
    with pytest.raises(DataError, match="run again to resume"):
        download_dataset("fiqa", tmp_path, base_url=server.url, md5=hashlib.md5(payload).hexdigest())
    part = tmp_path / ".downloads" / "fiqa.zip.part"
    assert part.stat().st_size == len(payload) // 3 and not (tmp_path / "fiqa").exists()
    out = download_dataset("fiqa", tmp_path, base_url=server.url, md5=hashlib.md5(payload).hexdigest())
    assert server.ranges[-1] == f"bytes={len(payload) // 3}-"
    assert out == tmp_path / "fiqa" and load_beir(out, split="test").qrels == {"q1": {"d3": 1}}
    assert not part.exists()


def test_bad_archives_leave_nothing_behind(server, tmp_path):
    server.files["/beir/nfcorpus.zip"] = b"this is not a zip file" * 10
    with pytest.raises(DataError, match="not a valid zip"):
        download_dataset("nfcorpus", tmp_path, base_url=server.url, md5="")
    server.files["/beir/nfcorpus.zip"] = beir_zip("nfcorpus", qrels_split="train")  # no test split
    with pytest.raises(DataError, match="qrels/test.tsv"):
        download_dataset("nfcorpus", tmp_path, base_url=server.url, md5="")
    good = bytearray(beir_zip("nfcorpus", compression=zipfile.ZIP_STORED))
    good[good.index(b"document number 1")] ^= 0x01  # one flipped bit inside a member
    server.files["/beir/nfcorpus.zip"] = bytes(good)
    with pytest.raises(DataError, match="bad CRC"):
        download_dataset("nfcorpus", tmp_path, base_url=server.url, md5="")
    assert not (tmp_path / "nfcorpus").exists()
    assert [p.name for p in tmp_path.iterdir()] == [".downloads"] and not list((tmp_path / ".downloads").iterdir())
    with pytest.raises(DataError, match="HTTP 404"):
        download_dataset("arguana", tmp_path, base_url=server.url, md5="")


def test_root_level_and_subforum_archives_unpack(server, tmp_path):
    """A zip with the files at its root (no folder), and cqadupstack's zip of sub-forum sets."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("corpus.jsonl", json.dumps({"_id": "d1", "title": "t", "text": "cells divide"}) + "\n")
        zf.writestr("queries.jsonl", json.dumps({"_id": "q1", "text": "do cells divide"}) + "\n")
        zf.writestr("qrels/dev.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    server.files["/beir/msmarco.zip"] = buf.getvalue()
    out = download_dataset("msmarco", tmp_path, base_url=server.url, md5="")
    assert out == tmp_path / "msmarco" and load_beir(out, split="dev").qrels == {"q1": {"d1": 1}}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for forum in ("android", "gis"):
            src = zipfile.ZipFile(io.BytesIO(beir_zip(forum)))
            for member in src.namelist():
                zf.writestr(f"cqadupstack/{member}", src.read(member))
    server.files["/beir/cqadupstack.zip"] = buf.getvalue()
    out = download_dataset("cqadupstack", tmp_path, base_url=server.url, md5="")
    assert sorted(p.name for p in out.iterdir()) == ["android", "gis"]
    assert load_beir(out / "gis", split="test").qrels == {"q1": {"d3": 1}}


def test_zip_slip_is_refused_and_leaves_nothing(server, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        src = zipfile.ZipFile(io.BytesIO(beir_zip()))
        for member in src.namelist():
            zf.writestr(member, src.read(member))
        zf.writestr("../evil.txt", "x")
    server.files["/beir/scifact.zip"] = buf.getvalue()
    with pytest.raises(DataError, match="outside"):
        download_dataset("scifact", tmp_path / "data", base_url=server.url, md5="")
    assert not (tmp_path / "data" / "scifact").exists() and not (tmp_path / "evil.txt").exists()
    assert not list((tmp_path / "data" / ".downloads").iterdir())


def test_names_and_destination_errors(tmp_path, capsys, monkeypatch):
    assert "scifact" in downloadable() and "t2retrieval" in downloadable() and "cranfield" not in downloadable()
    with pytest.raises(ConfigError, match="offline set"):
        download_dataset("cranfield", tmp_path)
    with pytest.raises(ConfigError, match="unknown data set"):
        download_dataset("nope", tmp_path)
    monkeypatch.delenv("LR_DATA_DIR", raising=False)
    code = main(["data", "download", "scifact"])
    assert code == 2 and "pass --dest DIR" in capsys.readouterr().err
    (tmp_path / "scifact").mkdir()
    code = main(["data", "download", "scifact", "--dest", str(tmp_path)])
    assert code == 2 and "--force" in capsys.readouterr().err


def test_cmteb_task_written_in_beir_layout(tmp_path, shared_data):
    """The CMTEB path converts a loaded mteb retrieval task (here a local one: no hub access)."""
    from lr_core.retrieval.mteb_integration import local_retrieval_task

    task = local_retrieval_task(shared_data / "cmrc2018_zh")
    task.load_data()
    out = write_beir(task, tmp_path / "cmrc", "test")
    ours, ref = load_beir(out, split="test"), load_beir(shared_data / "cmrc2018_zh", split="test")
    assert ours.qrels == ref.qrels and list(ours.queries) == list(ref.queries)
    assert {k: (p.title, p.text) for k, p in ours.corpus.items()} == {
        k: (p.title, p.text) for k, p in ref.corpus.items()}
