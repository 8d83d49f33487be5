"""Fetching registered data sets into the BEIR layout (``lr data download``): checked, atomic, resumable.

    >>> download_dataset("scifact", "/data/beir")                 # doctest: +SKIP
    PosixPath('/data/beir/scifact')
    >>> download_dataset("t2retrieval", "/data/beir")             # doctest: +SKIP

Sources (the official ones; a user needs internet):

* BEIR tasks: the BEIR zip (``lr_core.retrieval.tasks.BEIR_URL_TEMPLATE``), checked against the md5
  sums BEIR publishes (:data:`BEIR_MD5`), tested as a zip (CRC of every member), unpacked and
  checked for ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<eval split>.tsv``.
* CMTEB-Retrieval tasks: the C-MTEB data sets on the Hugging Face Hub, read through ``mteb``'s
  own task loader (the revision mteb pins), then written as BEIR files (:func:`write_beir`).

``base_url`` (or ``$LR_DOWNLOAD_BASE_URL``) replaces the BEIR server by another with the same
layout (``BASE/<name>.zip``): a mirror, or a loopback server in the tests.

Atomic and resumable: the archive is fetched to ``DEST/.downloads/<name>.zip.part``; an
interrupted transfer keeps that file, and the next call asks for the rest with an HTTP
``Range`` request (a server without range support sends it all again). The data set is unpacked
into a temporary directory inside ``DEST`` and renamed to ``DEST/<name>`` only once checked, so
``DEST/<name>`` is either complete or absent. A complete ``DEST/<name>`` is left alone.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from lr_core.retrieval.tasks import Task, get_task, is_complete, suite_members
from lr_core.errors import ConfigError, DataError
from lr_core.progress import progress

__all__ = ["BASE_URL_ENV", "BEIR_MD5", "default_data_dir", "download_dataset", "fetch", "write_beir",
           "downloadable"]

BASE_URL_ENV = "LR_DOWNLOAD_BASE_URL"
CHUNK = 1 << 20

# md5 of the official BEIR zips, as published in the BEIR README's data set table.
BEIR_MD5 = {
    "msmarco": "444067daf65d982533ea17ebd59501e4",
    "trec-covid": "ce62140cb23feb9becf6270d0d1fe6d1",
    "nfcorpus": "a89dba18a62ef92f7d323ec890a0d38d",
    "nq": "d4d3d2e48787a744b6f6e691ff534307",
    "hotpotqa": "f412724f78b0d91183a0e86805e16114",
    "fiqa": "17918ed23cd04fb15047f73e6c3bd9d9",
    "arguana": "8ad3e3c2a5867cdced806d6503f29b99",
    "webis-touche2020": "46f650ba5a527fc69e0a6521c5a23563",
    "cqadupstack": "4e41456d7df8ee7760a7f866133bda78",
    "quora": "18fb154900ba42a600f84b839c173167",
    "dbpedia-entity": "c2a39eb420a3164af735795df012ac2c",
    "scidocs": "38121350fc3a4d2f48850f6aff52e4a9",
    "fever": "5a818580227bfb4b35bb6fa46d9b6c03",
    "climate-fever": "8b66f0a9126c521bae2bde127b4dc99d",
    "scifact": "5f7d1de60b170fc8027bb7898e2efca1",
}


def downloadable() -> list[str]:
    """Names ``lr data download`` accepts: the registry's BEIR and CMTEB-Retrieval tasks."""
    return suite_members("beir") + suite_members("cmteb")


def default_data_dir() -> Path:
    """``$LR_DATA_DIR``; an error naming the flag when it is unset."""
    value = os.environ.get("LR_DATA_DIR")
    if not value:
        raise ConfigError("no destination: pass --dest DIR (or set LR_DATA_DIR)")
    return Path(value).expanduser()


def _lookup(name: str) -> Task:
    try:
        bench = get_task(name)
    except KeyError:
        raise ConfigError(f"unknown data set {name!r}; downloadable: {', '.join(downloadable())}") from None
    if bench.suite not in ("beir", "cmteb"):
        raise ConfigError(f"{bench.name!r} is an offline set shipped with the workplace, not downloadable; "
                          f"downloadable: {', '.join(downloadable())}")
    return bench


def download_dataset(name: str, dest: str | os.PathLike, base_url: str | None = None, md5: str | None = None,
                     force: bool = False, timeout: float = 60.0) -> Path:
    """Fetch registered data set ``name`` into ``dest/<name>`` (BEIR layout); returns that directory.

    ``md5`` overrides the published sum of a BEIR zip (``""``: do not check). ``force``
    replaces a complete copy.
    """
    bench = _lookup(name)
    dest = Path(dest).expanduser()
    final = dest / bench.name
    if final.exists() and not force:
        if is_complete(final, bench):
            return final
        raise DataError(f"{final} exists but is not a complete BEIR directory (no qrels/{bench.eval_split}.tsv); "
                        "remove it, or pass --force to replace it")
    dest.mkdir(parents=True, exist_ok=True)
    if bench.suite == "cmteb":
        return _download_cmteb(bench, dest, final)
    base = base_url or os.environ.get(BASE_URL_ENV)
    url = f"{base.rstrip('/')}/{bench.name}.zip" if base else bench.beir_url
    expected = BEIR_MD5.get(bench.name) if md5 is None else (md5 or None)
    part = dest / ".downloads" / f"{bench.name}.zip.part"
    fetch(url, part, timeout=timeout)
    _check_md5(part, expected, url)
    return _unpack(part, bench, dest, final, url)


def fetch(url: str, part: Path, timeout: float = 60.0) -> Path:
    """Download ``url`` into ``part``, continuing a partial file with a Range request.

    An interrupted transfer raises ``DataError`` and keeps ``part`` for the next call.
    """
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 -- BEIR's server or the user's
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the part file is already whole
            return part
        raise DataError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DataError(f"{url}: cannot connect ({getattr(exc, 'reason', exc)})") from None
    with resp:
        resumed = resp.status == 206
        if have and not resumed:
            have = 0  # the server ignored the Range header: start again
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        got = have
        try:
            with open(part, "ab" if resumed else "wb") as fh, \
                    progress(total=total, desc=f"downloading {Path(url).name}", unit="B") as bar:
                bar.update(have)
                while chunk := resp.read(CHUNK):
                    fh.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
        except (OSError, urllib.error.URLError) as exc:
            raise DataError(f"{url}: transfer interrupted after {got} bytes ({exc}); run again to resume") from None
    if total is not None and got != total:
        raise DataError(f"{url}: transfer interrupted after {got} of {total} bytes; run again to resume")
    return part


def _check_md5(path: Path, expected: str | None, url: str) -> None:
    if not expected:
        return
    digest = hashlib.md5()  # noqa: S324 -- compared with the md5 sums BEIR publishes
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != expected.lower():
        path.unlink()  # a wrong file must not be resumed
        raise DataError(f"{url}: md5 {digest.hexdigest()} does not match the published {expected}; "
                        "the partial download was removed, run again")


def _safe_extract(zf: zipfile.ZipFile, dest: Path) -> None:
    """Extract every member under ``dest``, refusing absolute paths and ``..`` (zip slip)."""
    root = dest.resolve()
    for info in zf.infolist():
        target = (dest / info.filename).resolve()
        if target != root and root not in target.parents:
            raise DataError(f"zip member {info.filename!r} would be written outside {dest}")
    zf.extractall(dest)


def _find_root(extracted: Path, name: str) -> Path:
    """The directory of the extracted archive that holds the data set."""
    if (extracted / name).is_dir():
        return extracted / name
    entries = [p for p in extracted.iterdir() if p.name != "__MACOSX" and not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return extracted


def _unpack(archive: Path, bench: Task, dest: Path, final: Path, url: str) -> Path:
    """Test, extract and check the archive; a bad archive is deleted (a rerun fetches it anew)."""
    work = Path(tempfile.mkdtemp(prefix=f".{bench.name}.unpack-", dir=dest))
    try:
        try:
            with zipfile.ZipFile(archive) as zf:
                bad = zf.testzip()
                if bad is not None:
                    raise DataError(f"{url}: corrupt zip (bad CRC in {bad!r})")
                _safe_extract(zf, work)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
            raise DataError(f"{url}: not a valid zip archive ({exc})") from None
        root = _find_root(work, bench.name)
        if not is_complete(root, bench):
            raise DataError(f"{url}: the archive does not unpack to a BEIR layout with qrels/{bench.eval_split}.tsv "
                            f"(found: {sorted(p.name for p in root.iterdir())})")
        _replace(root, final)
        archive.unlink()
        return final
    except DataError as exc:
        archive.unlink(missing_ok=True)
        raise DataError(f"{exc}; the download was removed") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _replace(src: Path, final: Path) -> None:
    """Rename ``src`` to ``final``; an existing ``final`` (``force``) is moved aside first, then removed."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.rename(final, old)
    os.rename(src, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# -- CMTEB-Retrieval through mteb --------------------------------------------------------
def _download_cmteb(bench: Task, dest: Path, final: Path) -> Path:
    import mteb

    task = mteb.get_task(bench.mteb_name)
    try:
        task.load_data()
    except Exception as exc:  # network, hub or datasets errors: the user's environment
        raise DataError(f"{bench.mteb_name}: cannot load from the Hugging Face Hub ({type(exc).__name__}: {exc})") from None
    work = Path(tempfile.mkdtemp(prefix=f".{bench.name}.unpack-", dir=dest))
    try:
        write_beir(task, work / bench.name, bench.eval_split)
        if not is_complete(work / bench.name, bench):
            raise DataError(f"{bench.mteb_name}: no {bench.eval_split} split in the loaded task")
        _replace(work / bench.name, final)
        return final
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_beir(task, out: Path, split: str) -> Path:
    """Write a loaded mteb retrieval task's ``split`` as ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``."""
    subsets = task.dataset
    data = subsets.get("default") or next(iter(subsets.values()))
    if split not in data:
        raise DataError(f"{task.metadata.name}: no {split!r} split (has {sorted(data)})")
    part = data[split]
    out.mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for row in part["corpus"]:
            fh.write(json.dumps({"_id": str(row["id"]), "title": row.get("title") or "", "text": row.get("text") or ""},
                                ensure_ascii=False) + "\n")
    with open(out / "queries.jsonl", "w", encoding="utf-8") as fh:
        for row in part["queries"]:
            fh.write(json.dumps({"_id": str(row["id"]), "text": row["text"]}, ensure_ascii=False) + "\n")
    with open(out / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for qid, docs in part["relevant_docs"].items():
            for did, score in docs.items():
                if any(c.isspace() for c in f"{qid}{did}"):
                    raise DataError(f"{task.metadata.name}: id {qid!r} or {did!r} holds whitespace (not TREC-safe)")
                fh.write(f"{qid}\t{did}\t{int(score)}\n")
    return out
