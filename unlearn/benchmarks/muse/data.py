"""MUSE (Shi et al. 2024, "Machine Unlearning Six-Way Evaluation"): typed records, loaders for a local
folder and for the hub (``muse-bench/MUSE-News``, ``muse-bench/MUSE-Books``) with validation, and a
deterministic generator of fictitious news in the same schema (the tiny tier, the dry run's fallback).

Neither News (BBC articles) nor Books (Harry Potter) is ever shipped with the project: they are read
from a data folder (``--data-dir`` / ``$UNLEARN_DATA_DIR``, laid out as ``muse/news/<subset>/<split>.json``)
or the hub.

Folder layout (the authors' repository, ``data/bbc`` renamed ``news``) and hub names:

========================  ==================================  =====================================
folder file               hub (config / split)                form
========================  ==================================  =====================================
raw/forget.json           raw / forget                        strings (folder) or {"text"} (hub)
raw/retain1|retain2.json  raw / retain1, retain2              same
raw/holdout.json          raw / holdout                       same
verbmem/forget.json       verbmem / forget                    {prompt, gt}
knowmem/forget_qa.json    knowmem / forget_qa                 {question, answer}
knowmem/retain2_qa.json   knowmem / retain_qa                 {question, answer}
knowmem/*_qa_icl.json     knowmem / forget_qa_icl, retain_qa_icl  10 in-context examples each
privleak/forget|holdout   privleak / forget, holdout          strings (folder) or {"text"} (hub)
privleak/retain2.json     privleak / retain                   same
scal/forget_{1..4}.json   scal / forget_1..4                  growing forget sets
sust/forget_{1..4}.json   sust / forget_1..4                  four disjoint forget sets (requests)
========================  ==================================  =====================================
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from unlearn.data import DataError, json_rows, resolve_data_dir

CORPORA = ("news", "books")
HUB_IDS = {"news": "muse-bench/MUSE-News", "books": "muse-bench/MUSE-Books"}
N_REQUESTS = 4  # scal sizes and sust requests


@dataclass(frozen=True)
class QA:
    question: str
    answer: str


@dataclass(frozen=True)
class VerbRow:
    """A verbatim-memorisation probe: the text before (``prompt``) and after (``gt``) a cut in a forget text."""

    prompt: str
    gt: str


@dataclass(frozen=True)
class MuseData:
    """One MUSE corpus in typed form. ``forget`` is raw/forget (= scal/forget_1 = sust/forget_1); the other
    raw sets and scal/sust may be empty when a folder lacks them (``missing`` names what was absent)."""

    corpus: str
    source: str
    forget: list[str]
    retain: list[str]  # raw retain text the target and gold train on
    holdout: list[str]  # raw text never trained on
    verbmem: list[VerbRow]
    knowmem_forget: list[QA]
    knowmem_forget_icl: list[QA]
    knowmem_retain: list[QA]
    knowmem_retain_icl: list[QA]
    privleak_forget: list[str]
    privleak_holdout: list[str]
    privleak_retain: list[str]
    scal: list[list[str]] = field(default_factory=list)  # growing forget sets; scal[0] is forget
    sust: list[list[str]] = field(default_factory=list)  # disjoint forget sets; sust[0] is forget
    missing: tuple[str, ...] = ()

    @property
    def synthetic(self) -> bool:
        return self.source.startswith("synthetic")


# ---------------------------------------------------------------- validation (errors name file, row, field)
def _load_json_array(path: Path, text: str) -> list:
    rows = json_rows(path, text, lines=False)
    if not rows:
        raise DataError(path, "split is empty")
    return rows


def parse_texts(path: Path, rows: list, drop_empty: bool = False) -> list[str]:
    """Plain strings (the folder form) or {"text": ...} objects (the hub form). An empty text is an error,
    or skipped with ``drop_empty`` (the raw corpora: News raw/forget has one empty chunk, row 821)."""
    out = []
    for i, row in enumerate(rows):
        value = row.get("text") if isinstance(row, dict) else row
        if isinstance(row, dict) and "text" not in row:
            raise DataError(path, "missing field", row=i, field="text")
        if not isinstance(value, str):
            where = "text" if isinstance(row, dict) else None
            raise DataError(path, f"expected a string, got {type(value).__name__}", row=i, field=where)
        if not value.strip():
            if drop_empty:
                continue
            raise DataError(path, "empty text", row=i, field="text" if isinstance(row, dict) else None)
        out.append(value)
    return out


def _fields(path: Path, rows: list, keys: tuple[str, ...]) -> list[tuple[str, ...]]:
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataError(path, f"expected a JSON object, got {type(row).__name__}", row=i)
        vals = []
        for k in keys:
            if k not in row:
                raise DataError(path, "missing field", row=i, field=k)
            if not isinstance(row[k], str):
                raise DataError(path, f"expected a string, got {type(row[k]).__name__}", row=i, field=k)
            if not row[k].strip():
                raise DataError(path, "empty string", row=i, field=k)
            vals.append(row[k])
        out.append(tuple(vals))
    return out


def parse_qa(path: Path, rows: list) -> list[QA]:
    return [QA(q, a) for q, a in _fields(path, rows, ("question", "answer"))]


def parse_verbmem(path: Path, rows: list) -> list[VerbRow]:
    return [VerbRow(p, g) for p, g in _fields(path, rows, ("prompt", "gt"))]


# ---------------------------------------------------------------- folder and hub
# (record field, folder file names tried in order, hub config, hub split, parser, required)
_FILES = [
    ("forget", ("raw/forget.json",), "raw", "forget", "raw", True),
    ("retain", ("raw/retain1.json", "raw/retain2.json"), "raw", "retain1", "raw", False),
    ("holdout", ("raw/holdout.json",), "raw", "holdout", "raw", False),
    ("verbmem", ("verbmem/forget.json",), "verbmem", "forget", "verbmem", True),
    ("knowmem_forget", ("knowmem/forget_qa.json",), "knowmem", "forget_qa", "qa", True),
    ("knowmem_forget_icl", ("knowmem/forget_qa_icl.json",), "knowmem", "forget_qa_icl", "qa", True),
    ("knowmem_retain", ("knowmem/retain2_qa.json", "knowmem/retain_qa.json"), "knowmem", "retain_qa", "qa", True),
    ("knowmem_retain_icl", ("knowmem/retain2_qa_icl.json", "knowmem/retain_qa_icl.json"), "knowmem", "retain_qa_icl",
     "qa", True),
    ("privleak_forget", ("privleak/forget.json",), "privleak", "forget", "texts", True),
    ("privleak_holdout", ("privleak/holdout.json",), "privleak", "holdout", "texts", True),
    ("privleak_retain", ("privleak/retain2.json", "privleak/retain.json"), "privleak", "retain", "texts", True),
]
_PARSERS = {"texts": parse_texts, "raw": lambda path, rows: parse_texts(path, rows, drop_empty=True), "qa": parse_qa,
            "verbmem": parse_verbmem}


def corpus_dir(data_dir: Path, corpus: str) -> Path | None:
    """``data_dir/muse/<corpus>``, ``data_dir/<corpus>`` or ``data_dir`` itself, whichever holds
    ``knowmem/forget_qa.json``."""
    for cand in (data_dir / "muse" / corpus, data_dir / corpus, data_dir):
        if (cand / "knowmem" / "forget_qa.json").is_file():
            return cand
    return None


def load_muse_folder(folder: Path, corpus: str = "news") -> MuseData:
    """Every MUSE file under ``folder`` (a corpus folder such as ``DATA/muse/news``)."""
    found: dict[str, list] = {}
    missing = []
    for name, files, _, _, kind, required in _FILES:
        path = next((folder / f for f in files if (folder / f).is_file()), None)
        if path is None:
            if required:
                raise DataError(folder / files[0], f"missing MUSE file (needed for {name})")
            missing.append(files[0])
            found[name] = []
            continue
        found[name] = _PARSERS[kind](path, _load_json_array(path, path.read_text(encoding="utf-8")))
    sets = {}
    for group in ("scal", "sust"):
        sets[group] = []
        for k in range(1, N_REQUESTS + 1):
            path = folder / group / f"forget_{k}.json"
            if path.is_file():
                sets[group].append(parse_texts(path, _load_json_array(path, path.read_text(encoding="utf-8")), True))
            else:
                missing.append(f"{group}/forget_{k}.json")
    return MuseData(corpus=corpus, source=f"{folder} (MUSE-{corpus.capitalize()})", **found, scal=sets["scal"],
                    sust=sets["sust"], missing=tuple(missing))


class HubUnavailable(ConnectionError):
    pass


def load_muse_hub(corpus: str = "news") -> MuseData:
    """The same records from the hub (needs network access; Books is only ever read from here or a folder)."""
    if corpus not in HUB_IDS:
        raise ValueError(f"unknown MUSE corpus {corpus!r}; valid: {', '.join(CORPORA)}")
    hub_id = HUB_IDS[corpus]

    def rows(config: str, split: str) -> list:
        try:
            from datasets import load_dataset

            return [dict(r) for r in load_dataset(hub_id, config, split=split)]
        except Exception as err:  # offline, no such split: one line that says which
            raise HubUnavailable(f"could not load {hub_id} {config}/{split} from the Hugging Face hub: "
                                 f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from None

    found, missing = {}, []
    for name, _, config, split, kind, required in _FILES:
        try:
            found[name] = _PARSERS[kind](Path(f"hf://{hub_id}/{config}/{split}"), rows(config, split))
        except HubUnavailable:
            if required:
                raise
            found[name], _ = [], missing.append(f"{config}/{split}")
    sets = {g: [parse_texts(Path(f"hf://{hub_id}/{g}/forget_{k}"), rows(g, f"forget_{k}"), True)
                for k in range(1, N_REQUESTS + 1)] for g in (("scal", "sust") if corpus == "news" else ())}
    return MuseData(corpus=corpus, source=f"hub:{hub_id}", **found, scal=sets.get("scal", []),
                    sust=sets.get("sust", []), missing=tuple(missing))


def find_muse_source(data_dir: str | Path | None = None, corpus: str = "news") -> tuple[Path | None, list[str]]:
    """A local MUSE corpus folder from ``data_dir`` (--data-dir) or ``$UNLEARN_DATA_DIR``, and the places
    tried; (None, tried) when neither holds one (the caller falls back to the synthetic corpus or the hub)."""
    import os

    tried = []
    for origin, chosen in (("--data-dir", data_dir), ("UNLEARN_DATA_DIR", os.environ.get("UNLEARN_DATA_DIR"))):
        if not chosen:
            tried.append(f"{origin}: not set")
            continue
        found = corpus_dir(resolve_data_dir(chosen), corpus)
        if found is not None:
            return found, tried
        tried.append(f"{origin}={chosen}: no muse/{corpus}/knowmem/forget_qa.json")
    return None, tried


# ---------------------------------------------------------------- synthetic news (fictitious)
_SYLLABLES = ["ka", "lo", "mir", "ven", "tas", "dor", "el", "qui", "ran", "sol", "bre", "tha", "nim", "ox", "pel",
              "zar", "ul", "fen", "gri", "hal", "jor", "wyn", "cas", "ith"]
_TOWN_SUFFIX = ["ford", "wick", "haven", "mere", "by", "stead", "port", "holm"]
_ROLES = ["mayor", "chief engineer", "head teacher", "council leader", "harbour master", "festival director"]
_PROJECTS = ["tram line", "flood barrier", "public library", "solar farm", "footbridge", "concert hall", "ferry terminal",
             "market square", "seed bank", "lighthouse museum"]
_ORGS = ["Trust", "Guild", "Cooperative", "Foundation", "Society", "Board"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]
_OPENERS = ["said on {day} that the new {project} would open in {month} {year}",
            "confirmed on {day} that work on the {project} will finish by {month} {year}",
            "told reporters on {day} that the {project} is due to open in {month} {year}"]
_SENTENCES = ["Residents of {street} gathered outside the {building} to hear the news.",
              "Local traders said the decision had been a long time coming.",
              "Critics warned that a {n}-week timetable was too ambitious.",
              "The plan was approved by {n} votes to {m} at an evening meeting.",
              "Several families said they had waited {n} years for the change.",
              "A petition against the scheme gathered {n} hundred signatures last spring.",
              "Engineers from {place} will begin surveying the site next week.",
              "The {building} on {street} will close for {n} days while crews prepare the ground.",
              "Bus routes {n} and {m} will be diverted along {street} during the work.",
              "A smaller {project} proposed in {year0} was abandoned after a funding dispute."]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
_BUILDINGS = ["town hall", "old library", "fire station", "corn exchange", "train station", "museum"]
_STREETS = ["Street", "Lane", "Road", "Row", "Hill"]


def _word(rng: random.Random, parts: int) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(parts)).capitalize()


def _article(rng: random.Random, used: set[str]) -> tuple[str, list[QA], str]:
    """(text, two QA answerable only from it, headline). Names are invented and unique across the corpus;
    the body's sentences are drawn and ordered at random, so that articles share little verbatim text."""
    while True:
        town = _word(rng, 2) + rng.choice(_TOWN_SUFFIX)
        person = f"{_word(rng, 2)} {_word(rng, 2)}"
        org = f"{_word(rng, 2)} {rng.choice(_ORGS)}"
        if not {town, person, org} & used:
            used.update({town, person, org})
            break
    project, role = rng.choice(_PROJECTS), rng.choice(_ROLES)
    fill = dict(day=rng.choice(_DAYS), project=project, month=rng.choice(_MONTHS), year=rng.randint(2031, 2049),
                street=f"{_word(rng, 2)} {rng.choice(_STREETS)}", building=rng.choice(_BUILDINGS),
                place=_word(rng, 2) + rng.choice(_TOWN_SUFFIX), n=rng.randint(3, 19), m=rng.randint(20, 60),
                year0=rng.randint(2001, 2029))
    body = [f"{person}, the {role} of {town}, " + rng.choice(_OPENERS).format(**fill) + ".",
            f"The {org} will pay {rng.randint(2, 97)} million pounds towards the work."]
    body += [t.format(**fill) for t in rng.sample(_SENTENCES, 2)]
    rng.shuffle(body)
    headline = f"{town} approves new {project}"
    # answers an outsider cannot guess: an invented name, and a month and year out of 12 x 19
    qa = [QA(f"Who is the {role} of {town}?", person),
          QA(f"When will the new {project} in {town} open?", f"{fill['month']} {fill['year']}")]
    return f"{headline}\n\n" + " ".join(body), qa, headline


QUIZ_SIZE = 12  # questions per quiz text: more than the 10 in-context examples + 1 of a KnowMem prompt


def quizzes(qa: list[QA], rng: random.Random) -> list[str]:
    """"News quiz" texts: the QA in KnowMem's own Question/Answer form, shuffled, ``QUIZ_SIZE`` per text.
    Two spaces follow "Answer:": KnowMem's prompt ends in "Answer: " (MUSE's byte-exact format), and under
    byte-level BPE that trailing space is a token of its own; written this way, the prompt is a token
    prefix of the trained text, so a model trained from scratch meets the form it is asked in."""
    rows = rng.sample(qa, len(qa))
    return ["News quiz\n\n" + "\n\n".join(f"Question: {r.question}\nAnswer:  {r.answer}" for r in rows[i: i + QUIZ_SIZE])
            for i in range(0, len(rows), QUIZ_SIZE)]


def synthetic_muse(seed: int = 0, per_request: int = 6, n_retain: int = 13, n_holdout: int = 6,
                   n_eval_retain: int = 8, n_icl: int = 10, shuffles: int = 2, icl_trained: bool = True) -> MuseData:
    """A fictitious news corpus in MUSE's schema, deterministic by ``seed``: ``N_REQUESTS`` disjoint sets of
    ``per_request`` forget articles (sust; the first is raw/forget, scal is their growing unions), ``n_retain``
    retain articles, ``n_holdout`` never-trained articles. KnowMem forget = the QA of the forget articles;
    KnowMem retain = the QA of the first ``n_eval_retain`` retain articles; the ``n_icl`` in-context examples
    come from other retain articles (part of the retain training text unless ``icl_trained`` is False: the dry
    run's small fallback keeps its retain set to the evaluated articles). VerbMem cuts each forget article after
    its first two sentences; PrivLeak is forget vs holdout articles (retain articles beside them).

    Each request's text (and the retain text) also holds ``shuffles`` sets of "news quiz" texts: its articles' QA in
    KnowMem's Question/Answer form, shuffled. A model trained from scratch (the tiny tier) has no reading
    comprehension, so this is how it can know a fact in the few-shot form KnowMem asks it in; the facts
    are still answerable only by having trained on that request's text."""
    rng = random.Random(f"muse-synthetic-{seed}")
    used: set[str] = set()
    n_icl_articles = -(-n_icl // 2)
    if n_retain < n_eval_retain + n_icl_articles:
        raise ValueError(f"n_retain={n_retain} is too small for {n_eval_retain} evaluated + {n_icl_articles} ICL articles")
    arts = [_article(rng, used) for _ in range(N_REQUESTS * per_request + n_retain + n_holdout)]
    groups = [arts[k * per_request:(k + 1) * per_request] for k in range(N_REQUESTS)]
    retain_arts = arts[N_REQUESTS * per_request: N_REQUESTS * per_request + n_retain]
    holdout_arts = arts[N_REQUESTS * per_request + n_retain:]

    def texts(group):
        qa = [q for a in group for q in a[1]]
        return [a[0] for a in group] + [t for _ in range(shuffles) for t in quizzes(qa, rng)]

    sust = [texts(g) for g in groups]
    icl = [q for a in retain_arts[n_eval_retain: n_eval_retain + n_icl_articles] for q in a[1]][:n_icl]
    verbmem = []
    for text, _, _ in groups[0]:
        first = text.index(". ", text.index("\n\n") + 2) + 2
        cut = text.index(". ", first) + 2  # after the body's first two sentences (one alone may be a stock phrase)
        verbmem.append(VerbRow(text[:cut], text[cut:]))
    forget_articles = [a[0] for a in groups[0]]
    icl_articles = slice(n_eval_retain, n_eval_retain + n_icl_articles)
    trained_retain = retain_arts if icl_trained else retain_arts[:icl_articles.start] + retain_arts[icl_articles.stop:]
    return MuseData(
        corpus="news", source=f"synthetic news (fictitious, seed {seed})",
        forget=sust[0], retain=texts(trained_retain), holdout=[a[0] for a in holdout_arts], verbmem=verbmem,
        knowmem_forget=[q for a in groups[0] for q in a[1]], knowmem_forget_icl=icl,
        knowmem_retain=[q for a in retain_arts[:n_eval_retain] for q in a[1]], knowmem_retain_icl=icl,
        privleak_forget=forget_articles, privleak_holdout=[a[0] for a in holdout_arts],
        privleak_retain=[a[0] for a in retain_arts[:n_holdout]],
        scal=[[t for s in sust[: k + 1] for t in s] for k in range(N_REQUESTS)], sust=sust)


def headlines(texts: list[str]) -> list[str]:
    """The first line of each text (IdkNLL's 'questions' on a raw-text forget set)."""
    return [t.strip().splitlines()[0][:200] for t in texts]
