"""Dense retrieval on a BEIR-layout folder: nDCG@10 (main), recall@100 and friends.

Follows MTEB 2.x (``AbsTaskRetrieval``): a document is ``title + " " + text`` (stripped; the text
alone when the title is empty), queries carry the task instruction and documents none, every
document is scored by cosine, and only queries named in the qrels are scored.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from l3prune.errors import L3PruneError
from l3prune.files import iter_lines, string_field
from l3prune.evaluation._common import (
    Task,
    TextEncoder,
    as_percent,
    cosine_matrix,
    encode_nonempty,
    encode_texts,
    read_records,
    require_columns,
    require_file,
)
from l3prune.evaluation._ranking import rank, ranking_metrics

logger = logging.getLogger(__name__)

RETRIEVAL_INSTRUCTION = "Given a query, retrieve relevant passages that answer the query"
_QUERY_CHUNK = 256  # queries scored at once; bounds the (queries, corpus) score matrix


@dataclass
class RetrievalData:
    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]  # judged queries only
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]  # query id -> doc id -> grade, unknown ids removed
    ignored_qrels: int


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """BEIR ``query-id corpus-id score`` (3 columns) or TREC ``qid iter docid rel`` (4 columns).

    A header line is accepted (BEIR files have one, some copies do not): the first line is taken
    as a header when its score field is not a number.
    """
    p = require_file(path, "qrels file")
    qrels: dict[str, dict[str, int]] = {}
    first_line: dict[tuple[str, str], int] = {}
    for lineno, line in iter_lines(p, "qrels file"):
        fields = line.split("\t") if "\t" in line else line.split()
        if not fields or not "".join(fields).strip():
            continue
        if len(fields) not in (3, 4):
            raise L3PruneError(
                f"{p}:{lineno}: expected 3 tab-separated fields (query-id, corpus-id, score) "
                f"or 4 (TREC), got {len(fields)}"
            )
        qid, did, grade = fields[0], fields[-2], fields[-1]  # BEIR: q d s; TREC: q iter d s
        try:
            number = float(grade)
        except ValueError:
            if lineno == 1:
                continue  # header line
            raise L3PruneError(f"{p}:{lineno}: relevance {grade!r} is not a number") from None
        if not math.isfinite(number) or number != int(number):
            raise L3PruneError(f"{p}:{lineno}: relevance {grade!r} is not an integer grade (0, 1, 2, ...); "
                               "qrels hold graded judgements, as MTEB reads them")
        judged = qrels.setdefault(qid.strip(), {})
        if did.strip() in judged:
            raise L3PruneError(f"{p}:{lineno}: query {qid.strip()!r} and document {did.strip()!r} are judged again "
                               f"(first at line {first_line[(qid.strip(), did.strip())]}); keep one judgement per pair")
        judged[did.strip()] = int(number)
        first_line[(qid.strip(), did.strip())] = lineno
    if not qrels:
        raise L3PruneError(f"{p} has no judgements")
    return qrels


def _doc_text(row: dict[str, Any], where: str) -> str:
    """``title + " " + text`` as MTEB builds it; may be empty (kept, see :func:`encode_nonempty`)."""
    title = row.get("title")
    title = "" if title is None else string_field(row, "title", where, allow_empty=True)
    text = string_field(row, "text", where, allow_empty=True)
    return f"{title} {text}".strip() if title else text.strip()


def _record_id(row: dict[str, Any], where: str) -> str:
    value = row.get("_id")
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise L3PruneError(f"{where}: field '_id' must be a non-empty string or integer, got {value!r}")
    return str(value).strip()


def _unique_ids(records, what: str) -> list[tuple[str, tuple[dict[str, Any], str]]]:
    """(id, (row, file:line)) of every record; an id seen twice (``1`` and ``"1"`` are one id) is an error, as a
    later copy would silently replace the first."""
    seen: dict[str, str] = {}
    out = []
    for row, at in zip(records, records.where):
        record_id = _record_id(row, at)
        if record_id in seen:
            raise L3PruneError(f"{at}: {what} _id {record_id!r} repeats (first at {seen[record_id]}; the integer and "
                               "the string of a number are the same id); give every record its own _id")
        seen[record_id] = at
        out.append((record_id, (row, at)))
    return out


@dataclass
class RetrievalTask(Task):
    """A folder with ``corpus.jsonl`` {_id, title?, text}, ``queries.jsonl`` {_id, text} and ``qrels/<split>.tsv``."""

    path: str | Path
    name: str = ""
    instruction: str | None = RETRIEVAL_INSTRUCTION
    split: str = "test"
    top_k: int = 1000  # as MTEB: rank this many documents per query

    task_type: ClassVar[str] = "retrieval"
    main_metric: ClassVar[str] = "ndcg_at_10"
    _data: RetrievalData | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.name = self.name or Path(self.path).name

    def load(self) -> RetrievalData:
        if self._data is not None:
            return self._data
        root = Path(self.path).expanduser()
        if not root.is_dir():
            raise L3PruneError(f"retrieval folder not found: {root} (expected corpus.jsonl, queries.jsonl, qrels/)")
        corpus = read_records(root / "corpus.jsonl", "corpus file")
        require_columns(corpus, ("_id", "text"), root / "corpus.jsonl")
        queries = read_records(root / "queries.jsonl", "queries file")
        require_columns(queries, ("_id", "text"), root / "queries.jsonl")
        raw_qrels = read_qrels(root / "qrels" / f"{self.split}.tsv")

        docs = {i: _doc_text(r, at) for i, (r, at) in _unique_ids(corpus, "document")}
        empty = [did for did, text in docs.items() if not text]
        if len(empty) == len(docs):
            raise L3PruneError(f"{root / 'corpus.jsonl'}: every document is empty; give the documents their text")
        if empty:
            logger.warning("%s: %d of %d documents are empty (e.g. %s); they stay in the corpus, as MTEB keeps "
                           "them, but no query can retrieve them", self.name, len(empty), len(docs), empty[:5])
        query_text = {i: string_field(r, "text", at) for i, (r, at) in _unique_ids(queries, "query")}
        qrels: dict[str, dict[str, int]] = {}
        bad_q: set[str] = set()
        bad_d: set[str] = set()
        ignored = 0
        for qid, judged in raw_qrels.items():
            for did, grade in judged.items():
                if qid not in query_text:
                    bad_q.add(qid)
                elif did not in docs:
                    bad_d.add(did)
                else:
                    qrels.setdefault(qid, {})[did] = grade
                    continue
                ignored += 1
        if ignored:
            logger.warning(
                "%s: %d qrels line(s) name ids missing from the data and are ignored: "
                "%d unknown query id(s) %s, %d unknown corpus id(s) %s",
                self.name, ignored, len(bad_q), sorted(bad_q)[:5], len(bad_d), sorted(bad_d)[:5],
            )
        if not qrels:
            raise L3PruneError(f"{root}: no qrels line names a known query and a known document; check the ids")
        unjudged = len(query_text) - len(qrels)
        if unjudged:
            logger.info(
                "%s: %d of %d queries have no judgements and are not scored (as in MTEB)",
                self.name, unjudged, len(query_text),
            )
        query_ids = [q for q in query_text if q in qrels]
        self._data = RetrievalData(
            doc_ids=list(docs),
            doc_texts=list(docs.values()),
            query_ids=query_ids,
            query_texts=[query_text[q] for q in query_ids],
            qrels=qrels,
            ignored_qrels=ignored,
        )
        return self._data

    def num_texts(self) -> int:
        data = self.load()
        return len(data.doc_texts) + len(data.query_texts)

    def sample_texts(self, n: int) -> list[str]:
        return self.load().query_texts[:n]

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        if self._data is not None:
            info.update(ignored_qrels=self._data.ignored_qrels, scored_queries=len(self._data.query_ids))
        return info

    def evaluate(
        self, encoder: TextEncoder, *, batch_size: int = 32, progress: bool | None = None
    ) -> dict[str, float]:
        data = self.load()
        doc_emb, empty = encode_nonempty(encoder, data.doc_texts, batch_size=batch_size, progress=progress)
        query_emb = encode_texts(encoder, data.query_texts, self.instruction, batch_size=batch_size, progress=progress)
        return score_retrieval(query_emb, doc_emb, data.query_ids, data.doc_ids, data.qrels, top_k=self.top_k,
                               empty=empty)


def score_retrieval(
    query_emb: np.ndarray,
    doc_emb: np.ndarray,
    query_ids: list[str],
    doc_ids: list[str],
    qrels: dict[str, dict[str, int]],
    *,
    top_k: int = 1000,
    empty: np.ndarray | None = None,
) -> dict[str, float]:
    """Rank every document by cosine for each query and score against the qrels (metrics x100).

    Documents marked in ``empty`` score -inf: they rank after every other document.
    """
    top_k = min(top_k, len(doc_ids))
    id_order = np.empty(len(doc_ids), dtype=np.int64)
    id_order[np.argsort(np.array(doc_ids, dtype=object))] = np.arange(len(doc_ids))  # tie-break key
    ranked_grades, judged_grades = [], []
    for start in range(0, len(query_ids), _QUERY_CHUNK):
        scores = cosine_matrix(query_emb[start : start + _QUERY_CHUNK], doc_emb)  # (chunk, n_docs)
        if empty is not None:
            scores[:, empty] = -np.inf
        for row, qid in zip(scores, query_ids[start : start + _QUERY_CHUNK]):
            top = rank(row, id_order, top_k)
            judged = qrels[qid]
            ranked_grades.append(np.array([judged.get(doc_ids[i], 0) for i in top]))
            judged_grades.append(np.array(list(judged.values())))
    metrics = ranking_metrics(
        ranked_grades,
        judged_grades,
        ndcg_at=(1, 3, 5, 10, 100),
        recall_at=(10, 100, 1000),
        map_at=(10, 100),
        mrr_at=(10,),
    )
    return as_percent(metrics)
