"""Bibliographic look-up: check the ``studies`` sheet against Crossref (DOI) and PubMed (PMID).

One ``requests.Session`` with connect/read time-outs, retries with exponential back-off on
429 and 5xx that honour ``Retry-After``, a descriptive User-Agent with a contact address,
and a JSON cache on disk so a second run makes no request (``offline=True`` uses only the
cache). Base URLs come from ``EVMETA_CROSSREF_URL`` and ``EVMETA_EUTILS_URL``; the contact
address from ``EVMETA_CONTACT_EMAIL``. Every failure (malformed id, 404, time-out, bad
JSON) becomes a message on its row, never an exception.

Every request has an overall deadline (``request_timeout``, retries included: a server that
never answers, or sends a byte every few seconds, is abandoned), answers are read up to
``MAX_RESPONSE_BYTES``, and the whole run has a deadline (``run_timeout``, the CLI's
``--deadline``, :data:`DEADLINE` seconds by default): studies not reached by then are listed
as not checked. A circuit breaker per service stops asking after :data:`BREAKER_FAILURES`
consecutive time-outs or connection failures: the remaining studies are skipped and listed,
so an unreachable service costs seconds, not an hour.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pandas as pd
from rapidfuzz import fuzz

from evmeta._paths import PathError, read_bytes_capped
from evmeta._version import __version__
from evmeta.errors import ExtractionError

CROSSREF_URL = "https://api.crossref.org"
EUTILS_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils"
DOI_PATTERN = re.compile(r"^10\.\d{4,9}/\S+$")
TITLE_THRESHOLD = 90.0
AUTHOR_THRESHOLD = 85.0
#: Largest answer read from a service, in bytes (a Crossref work record is a few kB).
MAX_RESPONSE_BYTES = 5 * 1024 * 1024
#: Default overall deadline of one request, retries included, in seconds.
REQUEST_TIMEOUT = 30.0
#: Default deadline of the whole look-up (every study, every request), in seconds.
DEADLINE = 300.0
#: Consecutive time-outs or connection failures after which a service is not asked again.
BREAKER_FAILURES = 3
#: Publication years accepted from a service.
YEARS = range(1600, 2200)
NOT_CHECKED = "not checked: the run's deadline (--deadline) was reached"
SKIPPED = "not checked: the service did not answer"
#: Row statuses: the service answered (found or not), it failed on this study, the study
#: was skipped (deadline or circuit breaker), or there was nothing to ask.
STATUSES = ("checked", "unreachable", "skipped", "not looked up")


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-finite number {name} in JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} out of range in JSON")
    return value


def loads_json(data: bytes | str) -> object:
    """Parse JSON that came from outside: no NaN/Infinity, no overflowing numbers.

    Raises ValueError for anything else that is not plain, finite JSON (including JSON
    nested too deeply for the parser).
    """
    try:
        return json.loads(data, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


@dataclass
class Record:
    """What a bibliographic service says about one publication."""

    title: str | None = None
    first_author: str | None = None
    year: int | None = None
    journal: str | None = None
    source: str = ""


@dataclass
class LookupResult:
    """Per-row findings and the records fetched."""

    rows: pd.DataFrame
    records: dict[str, Record] = field(default_factory=dict)
    requests_made: int = 0
    #: Services whose circuit breaker opened: name -> base URL.
    down: dict[str, str] = field(default_factory=dict)

    def messages(self) -> list[str]:
        """One line per row with a finding; skipped rows are summed up by :meth:`sentences`."""
        return [
            f"studies!{r['row']} {r['study_id']}: {r['message']}"
            for r in self.rows.to_dict("records")
            if r["message"] and r["status"] != "skipped"
        ]

    def _ids(self, status: str, message: str | None = None) -> list[str]:
        rows = self.rows[self.rows["status"] == status]
        if message is not None:
            rows = rows[rows["message"] == message]
        return [str(s) for s in rows["study_id"]]

    @property
    def not_checked(self) -> list[str]:
        """Study ids the run's deadline left unchecked."""
        return self._ids("skipped", NOT_CHECKED)

    @property
    def skipped(self) -> list[str]:
        """Study ids skipped because a service had stopped answering (circuit breaker)."""
        return self._ids("skipped", SKIPPED)

    @property
    def n_checked(self) -> int:
        """Studies a service answered for (found, not found, or a broken record)."""
        return int((self.rows["status"] == "checked").sum())

    @property
    def unreachable(self) -> bool:
        """True when no study could be checked because the services did not answer."""
        failed = self.rows["status"].isin(["unreachable", "skipped"]).any()
        return bool(failed) and self.n_checked == 0


class LookupClient:
    """HTTP client for Crossref and E-utilities with retries and an on-disk JSON cache."""

    def __init__(
        self,
        cache_dir: str | Path | None = None,
        *,
        offline: bool = False,
        timeout: tuple[float, float] = (5.0, 20.0),
        retries: int = 4,
        backoff: float = 0.5,
        contact: str | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
        run_timeout: float | None = None,
    ) -> None:
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        self.crossref = os.environ.get("EVMETA_CROSSREF_URL", CROSSREF_URL).rstrip("/")
        self.eutils = os.environ.get("EVMETA_EUTILS_URL", EUTILS_URL).rstrip("/")
        self.offline = offline
        self.timeout = timeout
        self.request_timeout = float(request_timeout)
        self.deadline = None if run_timeout is None else time.monotonic() + float(run_timeout)
        self.failures: dict[str, int] = {}  # service base URL -> consecutive failures
        self.down: dict[str, str] = {}  # service name -> base URL, once its breaker opened
        self.cache_dir = Path(cache_dir) if cache_dir else None
        if self.cache_dir:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        contact = contact or os.environ.get("EVMETA_CONTACT_EMAIL", "evmeta-user@example.org")
        self.session = requests.Session()
        self.session.headers["User-Agent"] = (
            f"evmeta/{__version__} (systematic-review data checks; mailto:{contact})"
        )
        retry = Retry(
            total=retries,
            connect=min(retries, 1),  # a refused or unresolved connection rarely heals in seconds
            read=retries,
            status=retries,
            backoff_factor=backoff,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"GET"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.requests_made = 0
        self.last_status = "not looked up"  # of the latest get_json: one of STATUSES

    def _cache_path(self, url: str) -> Path | None:
        if not self.cache_dir:
            return None
        return self.cache_dir / (hashlib.sha256(url.encode()).hexdigest()[:32] + ".json")

    def time_left(self) -> float:
        """Seconds until the run's deadline (infinite without one)."""
        return math.inf if self.deadline is None else self.deadline - time.monotonic()

    def _read_cache(self, cached: Path | None) -> object:
        """The cached payload of a URL (None when not cached or unreadable)."""
        if not cached or not cached.exists():
            return None
        try:
            return loads_json(read_bytes_capped(cached, max_bytes=MAX_RESPONSE_BYTES))
        except (ValueError, PathError):
            cached.unlink(missing_ok=True)  # a bad cache entry is fetched again
            return None

    def get_json(self, url: str, service: str = "") -> tuple[object, str | None]:
        """(payload, error message); cached payloads are used first.

        The payload is the parsed JSON as sent (None with an error): the caller checks its
        layout.

        ``service`` names the service (``"Crossref"``): after :data:`BREAKER_FAILURES`
        consecutive time-outs or connection failures it is not asked again this run.
        """
        cached = self._cache_path(url)
        payload = self._read_cache(cached)
        self.last_status = "checked"
        if payload is not None:
            return payload, None
        self.last_status = "not looked up"
        if self.offline:
            return None, "not in the cache (offline)"
        self.last_status = "skipped"
        if service in self.down:
            return None, SKIPPED
        limit = min(self.request_timeout, self.time_left())
        if limit <= 0:
            return None, NOT_CHECKED
        self.requests_made += 1
        outcome: dict[str, tuple[bytes | None, str | None, bool]] = {}
        # A daemon thread bounds the whole request (connect, retries, a trickling body);
        # one abandoned at the deadline cannot keep the process alive.
        # Each attempt's time-outs are capped by the deadline too, so an abandoned request
        # ends soon after it and does not linger on the server's connection.
        attempt_timeout = (min(self.timeout[0], limit), min(self.timeout[1], limit))
        worker = threading.Thread(
            target=lambda: outcome.update(r=self._fetch(url, attempt_timeout)), daemon=True
        )
        worker.start()
        worker.join(limit)
        body, error, failed = outcome.get(
            "r", (None, f"the service did not answer within {limit:.0f} s", True)
        )
        self._count(service, url, failed)
        self.last_status = "unreachable" if failed else "checked"
        if error or body is None:
            return None, error or "the service sent no answer"
        try:
            payload = loads_json(body)
        except ValueError:
            return None, "the service answered with invalid JSON"
        if cached:
            cached.write_text(json.dumps(payload), encoding="utf-8")
        return payload, None

    def _count(self, service: str, url: str, failed: bool) -> None:
        """Count consecutive failures of a service; open its breaker at the limit."""
        if not failed:
            self.failures[service] = 0
            return
        self.failures[service] = self.failures.get(service, 0) + 1
        if self.failures[service] >= BREAKER_FAILURES and service:
            base = self.crossref if url.startswith(self.crossref) else self.eutils
            self.down[service] = base

    def _fetch(
        self, url: str, timeout: tuple[float, float] | None = None
    ) -> tuple[bytes | None, str | None, bool]:
        """(body of a GET up to MAX_RESPONSE_BYTES, error message, whether the service failed
        to answer at all: time-out or no connection); never raises."""
        import requests

        try:
            with self.session.get(url, timeout=timeout or self.timeout, stream=True) as response:
                if response.status_code == 404:
                    return None, "not found (404)", False
                if response.status_code >= 400:
                    return None, f"the service answered {response.status_code}", False
                body = bytearray()
                for chunk in response.iter_content(chunk_size=65536):
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        return None, f"the answer is over {MAX_RESPONSE_BYTES // 2**20} MB; not read", False
                return bytes(body), None, False
        except requests.exceptions.Timeout:
            return None, "the service did not answer in time", True
        except requests.exceptions.RetryError as exc:
            return None, f"the service kept failing ({exc.__class__.__name__})", True
        except requests.exceptions.ConnectionError as exc:
            # Retries exhausted on read time-outs arrive as a ConnectionError wrapping them.
            from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError

            reason = getattr(exc.args[0], "reason", None) if exc.args else None
            timed_out = isinstance(reason, (ReadTimeoutError, ConnectTimeoutError))
            if timed_out and not isinstance(reason, NewConnectionError):  # a subclass of it
                return None, "the service did not answer in time", True
            return None, f"could not connect to the service ({_connection_reason(exc)})", True
        except requests.exceptions.RequestException as exc:
            return None, f"request failed: {exc.__class__.__name__}", True
        except Exception as exc:  # a broken answer must become a message on its row
            return None, f"request failed: {exc.__class__.__name__}", False

    def crossref_work(self, doi: str) -> tuple[Record | None, str | None]:
        if not DOI_PATTERN.match(doi):
            return None, f"malformed DOI {doi!r}"
        payload, error = self.get_json(f"{self.crossref}/works/{quote(doi, safe='/')}", "Crossref")
        if error:
            return None, f"Crossref: {error}"
        if not isinstance(payload, dict):
            return None, "Crossref: unexpected record layout"
        try:
            message = payload["message"]
            parts = (
                message.get("issued")
                or message.get("published-print")
                or message.get("published-online")
                or {}
            ).get("date-parts")
            year = _year(parts[0][0]) if parts and parts[0] and parts[0][0] else None
            authors = message.get("author") or []
            first = authors[0].get("family") if authors else None
            title = _text((message.get("title") or [None])[0])
            journal = _text((message.get("container-title") or [None])[0])
            first = _text(first)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError):
            return None, "Crossref: unexpected record layout"
        return Record(title, first, year, journal, "Crossref"), None

    def pubmed_summary(self, pmid: str) -> tuple[Record | None, str | None]:
        if not re.fullmatch(r"\d{1,9}", pmid):
            return None, f"malformed PMID {pmid!r}"
        payload, error = self.get_json(
            f"{self.eutils}/esummary.fcgi?db=pubmed&id={pmid}&retmode=json", "PubMed"
        )
        if error:
            return None, f"PubMed: {error}"
        if not isinstance(payload, dict):
            return None, "PubMed: unexpected record layout"
        try:
            item = payload["result"][pmid]
            if "error" in item:
                return None, f"PubMed: {item['error']}"
            authors = item.get("authors") or []
            first = authors[0]["name"].split(" ")[0] if authors else None
            year_match = re.match(r"(\d{4})", str(item.get("pubdate", "")))
            return Record(
                item.get("title", "").rstrip("."),
                first,
                int(year_match.group(1)) if year_match else None,
                item.get("fulljournalname") or item.get("source"),
                "PubMed",
            ), None
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError):
            return None, "PubMed: unexpected record layout"


def _connection_reason(exc: BaseException) -> str:
    """'connection refused', 'name not resolved', ... from a requests ConnectionError."""
    text = str(exc).lower()
    for needle, reason in (
        ("refused", "connection refused"),
        ("name or service not known", "host name not resolved"),
        ("temporary failure in name resolution", "host name not resolved"),
        ("nodename nor servname", "host name not resolved"),
        ("network is unreachable", "network unreachable"),
        ("reset by peer", "connection reset"),
        ("remote end closed", "connection closed without an answer"),
        ("connection aborted", "connection closed without an answer"),
    ):
        if needle in text:
            return reason
    return "no connection"


def _year(value: object) -> int:
    """A publication year from a service's date-parts (ValueError when it is not one)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"year {value!r}")
    year = int(float(value)) if not isinstance(value, int) else value
    if year not in YEARS:
        raise ValueError(f"year {value!r} out of range")
    return year


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _normalize_title(text: str | None) -> str:
    return re.sub(r"[^0-9a-z]+", " ", str(text or "").casefold()).strip()


def compare(row: pd.Series, record: Record) -> list[str]:
    """Where the typed row disagrees with the record (title and first author by rapidfuzz)."""
    problems = []
    if record.title and isinstance(row.get("title"), str) and row["title"].strip():
        score = fuzz.ratio(_normalize_title(row["title"]), _normalize_title(record.title))
        if score < TITLE_THRESHOLD:
            problems.append(f"title differs from {record.source} (similarity {score:.0f}): {record.title!r}")
    if record.first_author and isinstance(row.get("first_author"), str):
        score = fuzz.ratio(row["first_author"].casefold(), record.first_author.casefold())
        if score < AUTHOR_THRESHOLD:
            problems.append(
                f"first_author {row['first_author']!r} but {record.source} has {record.first_author!r}"
            )
    if record.year and pd.notna(row.get("year")) and int(row["year"]) != record.year:
        problems.append(f"year {int(row['year'])} but {record.source} has {record.year}")
    return problems


def lookup_studies(studies: pd.DataFrame, client: LookupClient) -> LookupResult:
    """Look up every study by DOI (else PMID) and compare it with what was typed.

    Each row gets a ``status`` (one of :data:`STATUSES`): a study is ``checked`` when a
    service answered for it, even with "not found".
    """
    rows, records = [], {}
    for _, row in studies.iterrows():
        doi = row.get("doi") if isinstance(row.get("doi"), str) and row.get("doi") else None
        pmid = str(row.get("pmid")) if isinstance(row.get("pmid"), str) and row.get("pmid") else None
        record: Record | None = None
        error: str | None = "no DOI or PMID to look up"
        statuses = ["not looked up"]
        if (doi or pmid) and client.time_left() <= 0 and not client.offline:
            doi = pmid = None
            error, statuses = NOT_CHECKED, ["skipped"]
        if doi:
            client.last_status = "not looked up"
            record, error = client.crossref_work(doi)
            statuses.append(client.last_status)
        if record is None and pmid:
            client.last_status = "not looked up"
            record, pmid_error = client.pubmed_summary(pmid)
            statuses.append(client.last_status)
            error = pmid_error if record is None else None
        for marker in (NOT_CHECKED, SKIPPED):
            if error and marker in error:
                error = marker
        problems = compare(row, record) if record else []
        if record:
            records[row["study_id"]] = record
        rows.append(
            {
                "study_id": row["study_id"],
                "row": int(row["_row"]),
                "source": record.source if record else "",
                "message": "; ".join(problems) if problems else (error or ""),
                "status": min(statuses, key=STATUSES.index),
            }
        )
    return LookupResult(
        pd.DataFrame(rows, columns=["study_id", "row", "source", "message", "status"]),
        records,
        client.requests_made,
        dict(client.down),
    )


def _raw_study_ids(workbook: str | Path) -> dict[int, str]:
    """Excel row -> study_id as typed (for rows the validator rejected)."""
    from evmeta.sheets.reader import read_raw

    sheet = read_raw(workbook).sheets.get("studies")
    if sheet is None or "study_id" not in sheet.header:
        return {}
    index = sheet.header.index("study_id")
    return {
        row: str(cells[index].value) for row, cells in sheet.rows if index < len(cells) and cells[index].value
    }


FILLABLE = {"title": "title", "journal": "journal", "first_author": "first_author", "year": "year"}


def fill_missing(
    workbook: str | Path, result: LookupResult, studies: pd.DataFrame, target: str | Path | None = None
) -> tuple[Path, int]:
    """Write ``target`` (default ``<name>.filled.xlsx`` beside the workbook), filling only
    empty cells."""
    import openpyxl

    source = Path(workbook)
    target = Path(target) if target is not None else source.with_name(source.stem + ".filled.xlsx")
    book = openpyxl.load_workbook(source)
    sheet = book["studies"]
    headers = {cell.value: cell.column for cell in sheet[1] if cell.value}
    filled = 0
    row_of = studies.set_index("study_id")["_row"]
    for study_id, record in result.records.items():
        excel_row = int(row_of[study_id])
        for column, attribute in FILLABLE.items():
            value = getattr(record, attribute)
            if column not in headers or value in (None, ""):
                continue
            cell = sheet.cell(row=excel_row, column=headers[column])
            if cell.value in (None, ""):
                cell.value = value
                if isinstance(value, str):
                    cell.data_type = "s"  # never let fetched text become a formula
                filled += 1
    book.save(target)
    return target, filled


def run_lookup(
    workbook: str | Path,
    *,
    cache: str | Path | None = None,
    offline: bool = False,
    fill: bool | str | Path = False,
    client: LookupClient | None = None,
    timeout: float | None = DEADLINE,
    request_timeout: float = REQUEST_TIMEOUT,
) -> tuple[LookupResult, Path | None]:
    """Look up the studies of a workbook (its other sheets need not be valid).

    Rows whose DOI or PMID the validator already rejected (malformed) get that message.
    ``timeout`` bounds the whole run (:data:`DEADLINE` s by default; ``None``: no deadline)
    and ``request_timeout`` each request, in seconds (both ignored when ``client`` is given);
    studies not reached in time are listed as not checked. ``fill`` writes the filled
    workbook: ``True`` beside the workbook, or a path.
    """
    from evmeta.schema.validation.validate import validate_extraction

    extraction, problems = validate_extraction(workbook)
    if extraction is None:
        raise ExtractionError(problems, fatal=True)
    studies = extraction.studies
    client = client or LookupClient(
        cache or Path(workbook).with_name(".evmeta-cache"),
        offline=offline,
        request_timeout=request_timeout,
        run_timeout=timeout,
    )
    result = lookup_studies(studies, client)
    ids = _raw_study_ids(workbook)
    malformed = [
        {
            "study_id": ids.get(p.row, f"row {p.row}") if p.row is not None else "",
            "row": p.row,
            "source": "",
            "message": f"{p.column}: {p.message}",
            "status": "not looked up",
        }
        for p in problems
        if p.sheet == "studies" and p.column in {"doi", "pmid"} and p.severity == "error"
    ]
    if malformed:
        result.rows = pd.concat([result.rows, pd.DataFrame(malformed)], ignore_index=True).sort_values(
            "row", kind="stable"
        )
    target = None
    if fill is not False:
        if Path(workbook).suffix.lower() != ".xlsx":
            raise PathError("--fill-missing writes a workbook; it needs an .xlsx input")
        target, _ = fill_missing(workbook, result, studies, None if fill is True else fill)
    return result, target
