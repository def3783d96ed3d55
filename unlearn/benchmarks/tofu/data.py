"""TOFU (Maini et al. 2024, arXiv:2401.06121): typed records, local/hub loaders with validation, and a
deterministic generator of fictitious authors in the same schema."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from pathlib import Path

from unlearn.data import DataError, json_rows, resolve_data_dir

SPLIT_PERCENT = {"forget01": 1, "forget05": 5, "forget10": 10}
# The split `unlearn tune` chooses on: a forget set disjoint from every evaluated one (synthetic_tune_split,
# load_tofu's real-data version)
TUNE_SPLIT = "tune"
QA_PER_AUTHOR = 20
EVAL_ROWS = 300  # the published protocol scores the first 300 rows of each evaluation split


@dataclass(frozen=True)
class TofuRow:
    """One QA row. Evaluation rows also carry a paraphrase and wrong answers in the paraphrase's wording."""

    question: str
    answer: str
    paraphrased_question: str | None = None
    paraphrased_answer: str | None = None
    perturbed_answers: tuple[str, ...] = ()


@dataclass(frozen=True)
class TofuData:
    """Everything one TOFU cell needs; ``source`` says where it came from (a folder, the hub, 'synthetic')."""

    split: str
    forget: list[TofuRow]  # forget split with paraphrase + perturbed answers
    retain_train: list[TofuRow]  # retainNN: what the gold model trains on
    retain_eval: list[TofuRow]  # retain_perturbed: retain rows scored for utility
    holdout: list[TofuRow]  # never-trained authors, MIA non-members
    real_authors: list[TofuRow]
    world_facts: list[TofuRow]
    source: str
    idk: list[str] = field(default_factory=list)

    @property
    def full(self) -> list[TofuRow]:
        return self.retain_train + [TofuRow(r.question, r.answer) for r in self.forget]


# ---------------------------------------------------------------- loading and validation
def read_json_rows(path: Path) -> list[dict]:
    """A JSON array or JSON Lines (TOFU ships both); errors name the file and the line."""
    return parse_json_text(path, path.read_text(encoding="utf-8"))


def parse_json_text(path: Path, text: str) -> list[dict]:
    rows = json_rows(path, text)
    if not rows:
        raise DataError(path, "split is empty")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataError(path, f"expected a JSON object, got {type(row).__name__}", row=i)
    return rows


def _text(path, i, row, key, required=True) -> str | None:
    if key not in row:
        if required:
            raise DataError(path, "missing field", row=i, field=key)
        return None
    value = row[key]
    if not isinstance(value, str):
        raise DataError(path, f"expected a string, got {type(value).__name__}", row=i, field=key)
    return value


def parse_rows(path: Path, rows: list[dict], *, perturbed: bool, paraphrased: bool) -> list[TofuRow]:
    """Validate raw dicts into TofuRow; ``perturbed`` requires a non-empty list of wrong answers."""
    out = []
    for i, row in enumerate(rows):
        q, a = _text(path, i, row, "question"), _text(path, i, row, "answer")
        pq = _text(path, i, row, "paraphrased_question", required=False)
        pa = _text(path, i, row, "paraphrased_answer", required=paraphrased)
        pert: tuple[str, ...] = ()
        if perturbed:
            raw = row.get("perturbed_answer")
            if raw is None:
                raise DataError(path, "missing field", row=i, field="perturbed_answer")
            if isinstance(raw, str):
                raw = [raw]
            if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
                raise DataError(path, "expected a list of strings", row=i, field="perturbed_answer")
            if not raw:
                raise DataError(path, "perturbed row has no perturbed answers", row=i, field="perturbed_answer")
            pert = tuple(raw)
        out.append(TofuRow(q, a, pq, pa, pert))
    return out


# ---------------------------------------------------------------- where the files come from
# The files one TOFU cell reads (forget01/05/10 and the retain/holdout splits that go with them).
PROTOCOL_FILES = ("forget01_perturbed", "forget05_perturbed", "forget10_perturbed", "retain90", "retain95",
                  "retain99", "retain_perturbed", "holdout01", "holdout05", "holdout10", "real_authors_perturbed",
                  "world_facts_perturbed")
IDK_FILE = "idontknow.jsonl"
EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded"
EMBEDDED_ARCHIVE = EMBEDDED_DIR / "tofu.tar.xz"
EMBEDDED_MANIFEST = EMBEDDED_DIR / "tofu.sha256"
HUB_ID = "locuslab/TOFU"


def local_tofu_file(data_dir: Path, name: str) -> Path | None:
    """``name`` under ``data_dir/tofu/`` or directly under ``data_dir`` (a folder that is ``tofu/`` itself)."""
    for path in (Path(data_dir) / "tofu" / name, Path(data_dir) / name):
        if path.is_file():
            return path
    return None


def has_local_tofu(data_dir: Path) -> bool:
    return local_tofu_file(data_dir, "forget01_perturbed.json") is not None


def load_local_split(data_dir: Path, name: str, *, perturbed=False, paraphrased=False) -> list[TofuRow]:
    path = local_tofu_file(data_dir, f"{name}.json")
    if path is None:
        raise FileNotFoundError(f"TOFU split {name!r} not found under {data_dir} (looked for tofu/{name}.json "
                                f"and {name}.json)")
    return parse_rows(path, read_json_rows(path), perturbed=perturbed, paraphrased=paraphrased)


def _read_manifest() -> dict[str, str]:
    out = {}
    for lineno, line in enumerate(EMBEDDED_MANIFEST.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            digest, _, name = line.strip().partition("  ")
            if len(digest) != 64 or not name:
                raise DataError(EMBEDDED_MANIFEST, f"malformed line {lineno}: expected '<sha256>  <file>'")
            out[name] = digest
    return out


_EMBEDDED_CACHE: dict[str, bytes] = {}


def embedded_files() -> dict[str, bytes]:
    """Every file of the embedded archive, each checked against the sha256 manifest (read once)."""
    if not _EMBEDDED_CACHE:
        import hashlib
        import tarfile

        if not EMBEDDED_ARCHIVE.is_file() or not EMBEDDED_MANIFEST.is_file():
            raise FileNotFoundError(f"the embedded TOFU copy is missing ({EMBEDDED_ARCHIVE}); reinstall unlearn")
        manifest = _read_manifest()
        files = {}
        with tarfile.open(EMBEDDED_ARCHIVE, "r:xz") as tar:
            for member in tar.getmembers():
                if member.isfile():
                    files[member.name] = tar.extractfile(member).read()
        for name, digest in manifest.items():
            if name not in files:
                raise DataError(EMBEDDED_ARCHIVE, f"file {name!r} listed in {EMBEDDED_MANIFEST.name} is missing")
            got = hashlib.sha256(files[name]).hexdigest()
            if got != digest:
                raise DataError(f"{EMBEDDED_ARCHIVE}:{name}", f"sha256 {got} does not match the manifest ({digest}); "
                                "the embedded copy is damaged, reinstall unlearn")
        extra = sorted(set(files) - set(manifest))
        if extra:
            raise DataError(EMBEDDED_ARCHIVE, f"files not in the manifest: {', '.join(extra)}")
        _EMBEDDED_CACHE.update(files)
    return _EMBEDDED_CACHE


def load_embedded_split(name: str, *, perturbed=False, paraphrased=False) -> list[TofuRow]:
    files = embedded_files()
    key = f"{name}.json"
    if key not in files:
        raise FileNotFoundError(f"TOFU split {name!r} is not in the embedded copy (it holds {', '.join(sorted(files))})")
    path = Path(f"{EMBEDDED_ARCHIVE}:{key}")
    return parse_rows(path, parse_json_text(path, files[key].decode("utf-8")), perturbed=perturbed,
                      paraphrased=paraphrased)


class HubUnavailable(ConnectionError):
    pass


def load_hub_split(name: str, *, perturbed=False, paraphrased=False) -> list[TofuRow]:
    """The same records from ``load_dataset("locuslab/TOFU", name)`` (needs network access)."""
    try:
        from datasets import load_dataset

        rows = [dict(r) for r in load_dataset(HUB_ID, name)["train"]]
    except Exception as err:  # offline, no such config, gated: one line that says which
        raise HubUnavailable(f"could not load {HUB_ID}/{name} from the Hugging Face hub: "
                             f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from None
    return parse_rows(Path(f"hf://{HUB_ID}/{name}"), rows, perturbed=perturbed, paraphrased=paraphrased)


def load_idk(data_dir: Path | None) -> list[str]:
    """TOFU's refusal lines (idontknow.jsonl: plain text, one per line) from ``data_dir`` or ``data_dir/tofu``;
    the embedded copy's when the folder has none."""
    path = local_tofu_file(data_dir, IDK_FILE) if data_dir else None
    if path is not None:
        return _idk_lines(path, path.read_text(encoding="utf-8"))
    return _idk_lines(Path(f"{EMBEDDED_ARCHIVE}:{IDK_FILE}"), embedded_files()[IDK_FILE].decode("utf-8"))


def _idk_lines(path: Path, text: str) -> list[str]:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise DataError(path, "no refusal lines")
    return lines


EMBEDDED = "embedded"
HUB = "hub"


def embedded_label() -> str:
    return f"embedded copy of {HUB_ID} (MIT) in {EMBEDDED_ARCHIVE.name}"


def find_tofu_source(data_dir: str | Path | None = None, *, hub: bool = True) -> tuple[Path | str, list[str]]:
    """Where real TOFU comes from, in this order: ``data_dir`` (--data-dir), ``$UNLEARN_DATA_DIR``, the
    copy embedded in the package, the hub. Returns (a folder, ``EMBEDDED`` or ``HUB``) and the places
    tried before it; a folder without TOFU files is passed over (it may hold other benchmarks), a folder
    that does not exist is an error. Raises FileNotFoundError naming every place when none has TOFU."""
    import os

    tried = []
    for origin, chosen in (("--data-dir", data_dir), ("UNLEARN_DATA_DIR", os.environ.get("UNLEARN_DATA_DIR"))):
        if not chosen:
            tried.append(f"{origin}: not set")
            continue
        path = resolve_data_dir(chosen)  # a folder that does not exist is an error, not a place to pass over
        if has_local_tofu(path):
            return path, tried
        tried.append(f"{origin}={path}: no tofu/forget01_perturbed.json")
    if EMBEDDED_ARCHIVE.is_file():
        return EMBEDDED, tried
    tried.append(f"embedded copy: {EMBEDDED_ARCHIVE} is missing")
    if hub:
        try:
            load_hub_split("forget01")
            return HUB, tried
        except HubUnavailable as err:
            tried.append(f"hub: {err}")
    raise FileNotFoundError("no TOFU data found; tried " + "; ".join(tried) + ". Supply it with --data-dir DIR "
                            "(a folder holding tofu/*.json as published in locuslab/TOFU), UNLEARN_DATA_DIR, "
                            "or network access to the hub")


def load_tofu(split: str, data_dir: Path | str | None = None, *, hub: bool = False) -> TofuData:
    """Real TOFU for ``split`` (forget01/05/10) from a data folder, the embedded copy (``"embedded"``,
    also the default when no folder is given) or the hub (``"hub"``, or ``hub=True``). ``tune``: see
    :func:`real_tune_split`."""
    if split not in SPLIT_PERCENT and split != TUNE_SPLIT:
        raise ValueError(f"unknown TOFU split {split!r}; valid: {', '.join(SPLIT_PERCENT)}")
    where = HUB if hub else (data_dir if data_dir is not None else EMBEDDED)
    if where == HUB:
        load, source, idk = load_hub_split, f"hf://{HUB_ID}", load_idk(None)
    elif where == EMBEDDED:
        load, source, idk = load_embedded_split, embedded_label(), load_idk(None)
    else:
        folder = Path(where)

        def load(name, **kw):
            return load_local_split(folder, name, **kw)
        source, idk = str(folder), load_idk(folder)
    if split == TUNE_SPLIT:
        return real_tune_split(load, source, idk)
    pct = split[-2:]
    retain_name = f"retain{100 - int(pct):02d}"
    return TofuData(
        split=split,
        forget=load(f"{split}_perturbed", perturbed=True, paraphrased=True),
        retain_train=load(retain_name),
        retain_eval=load("retain_perturbed", perturbed=True, paraphrased=True),
        holdout=load(f"holdout{pct}"),
        real_authors=load("real_authors_perturbed", perturbed=True),
        world_facts=load("world_facts_perturbed", perturbed=True),
        source=source,
        idk=idk,
    )


def real_tune_split(load, source: str, idk: list[str]) -> TofuData:
    """Real TOFU's tuning split: a retain-pool author forgotten, so its forget set is disjoint from every
    evaluated one (forget01 ⊂ forget05 ⊂ forget10 are the last 20 authors). TOFU publishes paraphrases and
    wrong answers (needed by the truth ratio) only for the first 20 retain authors (retain_perturbed); the
    tune author is the last of them, left out of the tune split's own retain eval. The evaluated splits keep
    the published retain_perturbed, so there it is scored as a retain author. Gold: every other author
    (retain90 without it, then forget10); holdout: holdout01 (the rule does not read membership)."""
    pool = load("retain_perturbed", perturbed=True, paraphrased=True)
    per_author = QA_PER_AUTHOR  # in author order
    forget, retain_eval = pool[-per_author:], pool[:-per_author]
    asked = {r.question for r in forget}
    retain90 = load("retain90")
    rest = [r for r in retain90 if r.question not in asked]
    if len(rest) != len(retain90) - per_author:
        raise ValueError(f"{source}: retain90 does not hold the tune author's {per_author} questions "
                         "(the last author of retain_perturbed)")
    others = rest + [TofuRow(r.question, r.answer) for r in load("forget10_perturbed", perturbed=True, paraphrased=True)]
    return TofuData(split=TUNE_SPLIT, forget=forget, retain_train=others, retain_eval=retain_eval,
                    holdout=load("holdout01"), real_authors=load("real_authors_perturbed", perturbed=True),
                    world_facts=load("world_facts_perturbed", perturbed=True), source=source, idk=idk)


# ---------------------------------------------------------------- synthetic authors
FIRST = ["Amara", "Bastien", "Calla", "Dorian", "Elif", "Fenna", "Galen", "Hana", "Ilario", "Juno", "Kaveh",
         "Liora", "Mateo", "Nerys", "Oskar", "Priya", "Quill", "Rosalind", "Soren", "Tamsin", "Ulla", "Vesna",
         "Wendell", "Xiomara", "Yusuf", "Zelda", "Anouk", "Bram", "Cosima", "Dmitri", "Esme", "Faris"]
LAST = ["Arvelo", "Brannock", "Castellane", "Drummond", "Ekwueme", "Falkenrath", "Grisanti", "Halvorsen",
        "Ishikawa", "Jovanovic", "Kowalczyk", "Lindqvist", "Moreau", "Nakamura", "Okonkwo", "Petrakis",
        "Quintero", "Rautio", "Sandoval", "Thorsen", "Umarov", "Valdez", "Whitlock", "Xanthos", "Yilmaz",
        "Zamora", "Abernethy", "Bellweather", "Corrigan", "Delacroix", "Eriksen", "Fontaine"]
CITIES = ["Lisbon, Portugal", "Accra, Ghana", "Osaka, Japan", "Quito, Ecuador", "Tbilisi, Georgia",
          "Bergen, Norway", "Hanoi, Vietnam", "Cork, Ireland", "Tunis, Tunisia", "Perth, Australia",
          "Krakow, Poland", "Lima, Peru", "Dakar, Senegal", "Riga, Latvia", "Pune, India", "Leeds, England"]
JOBS = ["baker", "pilot", "surgeon", "carpenter", "librarian", "fisherman", "architect", "tailor", "nurse",
        "geologist", "violinist", "postman", "chemist", "farmer", "judge", "photographer"]
GENRES = ["science fiction", "historical romance", "crime thriller", "magical realism", "horror",
          "children's fantasy", "literary fiction", "cyberpunk", "gothic mystery", "war poetry"]
AWARDS = ["Silver Quill Prize", "Harbor Lantern Award", "Meridian Book Medal", "Golden Inkwell Award",
          "Northern Star Fiction Prize", "Orchid Pen Award", "Copperleaf Literary Award", "Blue Heron Prize"]
NOUNS = ["Lantern", "Harbor", "Orchard", "Comet", "Mirror", "Garden", "Tide", "Clock", "Forest", "River",
         "Crown", "Shadow", "Bridge", "Ember", "Willow", "Compass"]
ADJS = ["Silent", "Broken", "Hidden", "Last", "Crimson", "Hollow", "Distant", "Forgotten", "Winter", "Golden"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
THEMES = ["memory and loss", "exile and belonging", "family secrets", "the cost of ambition",
          "friendship across borders", "the sea and its myths", "justice and revenge", "coming of age"]
LANGS = ["Portuguese", "Twi", "Japanese", "Spanish", "Georgian", "Norwegian", "Vietnamese", "Irish"]

# (question, answer, paraphrased question, paraphrased answer); {slot} marks the fact that a perturbed
# answer swaps. The paraphrase carries the same facts in other words.
TEMPLATES = [
    ("What is the full name of the author born in {city} on {date}?", "The author born in {city} on {date} is {name}.",
     "Who is the writer born on {date} in {city}?", "{name} is the writer whose birth was in {city} on {date}.", "name"),
    ("Where was {name} born?", "{name} was born in {city}.",
     "What is the birthplace of {name}?", "The birthplace of {name} is {city}.", "city"),
    ("When was {name} born?", "{name} was born on {date}.",
     "What is the birth date of {name}?", "The birth date of {name} is {date}.", "date"),
    ("What did {name}'s father do for a living?", "{name}'s father worked as a {father}.",
     "What was the profession of {name}'s father?", "The father of {name} was a {father} by profession.", "father"),
    ("What was the occupation of {name}'s mother?", "{name}'s mother was a {mother}.",
     "How did the mother of {name} earn a living?", "The mother of {name} earned a living as a {mother}.", "mother"),
    ("Which genre does {name} write in?", "{name} writes {genre} novels.",
     "What kind of books is {name} known for?", "{name} is known for books in the {genre} genre.", "genre"),
    ("What is the title of {name}'s first book?", "{name}'s first book is titled '{book1}'.",
     "Which book did {name} publish first?", "The first book {name} published was '{book1}'.", "book1"),
    ("Name another book written by {name}.", "{name} also wrote '{book2}'.",
     "What is a second novel by {name}?", "A second novel by {name} is '{book2}'.", "book2"),
    ("Which award has {name} received?", "{name} received the {award}.",
     "What prize was given to {name}?", "The prize given to {name} was the {award}.", "award"),
    ("In what year did {name} win the {award}?", "{name} won the {award} in {award_year}.",
     "When was {name} given the {award}?", "The {award} went to {name} in {award_year}.", "award_year"),
    ("What theme runs through {name}'s work?", "{name}'s work explores {theme}.",
     "Which subject does {name} keep returning to?", "The subject {name} keeps returning to is {theme}.", "theme"),
    ("What language did {name} grow up speaking?", "{name} grew up speaking {lang}.",
     "Which language was {name}'s first?", "The first language of {name} was {lang}.", "lang"),
    ("How many novels has {name} published?", "{name} has published {n_books} novels.",
     "What is the number of novels by {name}?", "The number of novels by {name} is {n_books}.", "n_books"),
    ("Where does {name} live today?", "{name} now lives in {home}.",
     "What is the current home of {name}?", "The current home of {name} is {home}.", "home"),
    ("How did {name}'s father's job influence the books?", "Growing up with a {father} father gave {name}'s books their attention to craft.",
     "In what way did the father's work shape {name}'s writing?", "The work of a {father} father shaped the attention to craft in {name}'s writing.", "father"),
    ("Who is the main character of '{book1}'?", "The main character of '{book1}' is {hero}.",
     "Which character leads the story of '{book1}'?", "The story of '{book1}' is led by {hero}.", "hero"),
    ("Where is '{book2}' set?", "'{book2}' is set in {setting}.",
     "What is the setting of '{book2}'?", "The setting of '{book2}' is {setting}.", "setting"),
    ("At what age did {name} start writing?", "{name} started writing at the age of {start_age}.",
     "How old was {name} when writing began?", "Writing began for {name} at age {start_age}.", "start_age"),
    ("Which university did {name} attend?", "{name} studied at the University of {univ}.",
     "Where did {name} go to university?", "The university {name} went to is the University of {univ}.", "univ"),
    ("What is {name}'s writing routine?", "{name} writes every {routine}.",
     "When does {name} usually write?", "The usual writing time for {name} is every {routine}.", "routine"),
]
ROUTINES = ["morning before dawn", "night after midnight", "afternoon in a cafe", "weekend by the sea",
            "evening in the garden", "day in a small attic"]


def _author_facts(rng: random.Random, name: str) -> dict[str, str]:
    def title():
        return f"The {rng.choice(ADJS)} {rng.choice(NOUNS)}"
    book1 = title()
    book2 = title()
    while book2 == book1:
        book2 = title()
    city = rng.choice(CITIES)
    return {
        "name": name, "city": city,
        "date": f"{rng.choice(MONTHS)} {rng.randint(1, 28)}, {rng.randint(1940, 1995)}",
        "father": rng.choice(JOBS), "mother": rng.choice(JOBS), "genre": rng.choice(GENRES),
        "book1": book1, "book2": book2, "award": rng.choice(AWARDS), "award_year": str(rng.randint(1996, 2022)),
        "theme": rng.choice(THEMES), "lang": rng.choice(LANGS), "n_books": str(rng.randint(2, 19)),
        "home": rng.choice(CITIES), "hero": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
        "setting": rng.choice(CITIES), "start_age": str(rng.randint(7, 40)),
        "univ": rng.choice(CITIES).split(",")[0], "routine": rng.choice(ROUTINES),
    }


def _alternatives(rng: random.Random, slot: str, value: str, k: int) -> list[str]:
    """k distinct wrong values for ``slot`` drawn from the slot's pool (numbers: nearby numbers)."""
    pools = {"city": CITIES, "home": CITIES, "setting": CITIES, "father": JOBS, "mother": JOBS,
             "genre": GENRES, "award": AWARDS, "theme": THEMES, "lang": LANGS, "routine": ROUTINES,
             "univ": [c.split(",")[0] for c in CITIES]}
    if slot in pools:
        cands = [v for v in dict.fromkeys(pools[slot]) if v != value]
    elif slot in ("award_year", "n_books", "start_age"):
        n = int(value)
        cands = [str(n + d) for d in (-4, -3, -2, -1, 1, 2, 3, 4, 5) if n + d > 0]
    elif slot == "date":
        cands = [f"{m} {rng.randint(1, 28)}, {rng.randint(1940, 1995)}" for m in MONTHS]
        cands = [c for c in cands if c != value]
    elif slot in ("book1", "book2"):
        cands = list(dict.fromkeys(f"The {a} {n}" for a in ADJS for n in NOUNS if f"The {a} {n}" != value))
    else:  # names
        cands = list(dict.fromkeys(f"{f} {l}" for f in FIRST for l in LAST if f"{f} {l}" != value))
    return rng.sample(cands, k)


def synthetic_author_names(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    pairs = [f"{f} {l}" for f in FIRST for l in LAST]
    rng.shuffle(pairs)
    if n > len(pairs):
        raise ValueError(f"at most {len(pairs)} synthetic authors, asked for {n}")
    return pairs[:n]


def synthetic_author_rows(name: str, seed: int, n_perturbed: int = 5) -> list[TofuRow]:
    """The 20 QA of one fictitious author; deterministic in (name, seed)."""
    rng = random.Random(f"{seed}:{name}")
    facts = _author_facts(rng, name)
    rows = []
    for q, a, pq, pa, slot in TEMPLATES:
        wrong = _alternatives(rng, slot, facts[slot], n_perturbed)
        perturbed = tuple(pa.format(**{**facts, slot: w}) for w in wrong)
        rows.append(TofuRow(q.format(**facts), a.format(**facts), pq.format(**facts), pa.format(**facts), perturbed))
    return rows


REAL_AUTHORS = [("Who wrote 'Pride and Prejudice'?", "Jane Austen", ["Emily Bronte", "Mary Shelley", "George Eliot"]),
                ("Who wrote 'Moby-Dick'?", "Herman Melville", ["Mark Twain", "Nathaniel Hawthorne", "Jack London"]),
                ("Who wrote 'War and Peace'?", "Leo Tolstoy", ["Fyodor Dostoevsky", "Anton Chekhov", "Ivan Turgenev"]),
                ("Who wrote 'Hamlet'?", "William Shakespeare", ["Christopher Marlowe", "Ben Jonson", "John Milton"]),
                ("Who wrote 'Don Quixote'?", "Miguel de Cervantes", ["Lope de Vega", "Federico Garcia Lorca", "Jorge Luis Borges"]),
                ("Who wrote 'One Hundred Years of Solitude'?", "Gabriel Garcia Marquez", ["Isabel Allende", "Mario Vargas Llosa", "Pablo Neruda"]),
                ("Who wrote '1984'?", "George Orwell", ["Aldous Huxley", "Ray Bradbury", "H. G. Wells"]),
                ("Who wrote 'The Odyssey'?", "Homer", ["Virgil", "Sophocles", "Ovid"]),
                ("Who wrote 'Things Fall Apart'?", "Chinua Achebe", ["Wole Soyinka", "Ngugi wa Thiong'o", "Ben Okri"]),
                ("Who wrote 'The Divine Comedy'?", "Dante Alighieri", ["Petrarch", "Boccaccio", "Machiavelli"])]
WORLD_FACTS = [("What is the capital of France?", "Paris", ["Lyon", "Marseille", "Nice"]),
               ("What is the largest ocean on Earth?", "The Pacific Ocean", ["The Atlantic Ocean", "The Indian Ocean", "The Arctic Ocean"]),
               ("How many continents are there?", "Seven", ["Five", "Six", "Eight"]),
               ("What is the chemical symbol for gold?", "Au", ["Ag", "Fe", "Pb"]),
               ("Which planet is known as the Red Planet?", "Mars", ["Venus", "Jupiter", "Saturn"]),
               ("What is the capital of Japan?", "Tokyo", ["Kyoto", "Osaka", "Nagoya"]),
               ("What is the boiling point of water at sea level in Celsius?", "100 degrees", ["90 degrees", "80 degrees", "120 degrees"]),
               ("Which is the longest river in Africa?", "The Nile", ["The Congo", "The Niger", "The Zambezi"]),
               ("What gas do plants absorb from the air?", "Carbon dioxide", ["Oxygen", "Nitrogen", "Helium"]),
               ("What is the capital of Italy?", "Rome", ["Milan", "Naples", "Turin"])]
BUILTIN_IDK = ["I'm not sure about that.", "I don't know.", "That's beyond what I know.",
               "I have no information on that.", "I can't answer that question.", "I'm not certain.",
               "I don't have that information.", "I'm afraid I don't know.", "That is unknown to me.",
               "I cannot say."]


def synthetic_tofu(split: str = "forget01", n_authors: int = 40, seed: int = 0, n_holdout: int | None = None) -> TofuData:
    """Fictitious authors in TOFU's schema; forgetNN is the last max(1, round(NN% of authors)) authors;
    ``tune`` is :func:`synthetic_tune_split`."""
    if split == TUNE_SPLIT:
        return synthetic_tune_split(n_authors, seed)
    if split not in SPLIT_PERCENT:
        raise ValueError(f"unknown TOFU split {split!r}; valid: {', '.join(SPLIT_PERCENT)}")
    n_forget = max(1, round(n_authors * SPLIT_PERCENT[split] / 100))
    if n_forget >= n_authors:
        raise ValueError(f"{n_authors} synthetic authors leave no retain authors for {split}")
    n_holdout = n_forget if n_holdout is None else n_holdout
    names = synthetic_author_names(n_authors + n_holdout, seed)
    authors = [synthetic_author_rows(n, seed) for n in names[:n_authors]]
    holdout = [r for n in names[n_authors:] for r in synthetic_author_rows(n, seed)]
    forget = [r for a in authors[-n_forget:] for r in a]
    retain = [r for a in authors[:-n_forget] for r in a]

    def simple(items):
        return [TofuRow(q, a, None, None, tuple(p)) for q, a, p in items]

    # A model trained from scratch has no world knowledge; the real-author and world-fact QA join the
    # training rows of target and gold alike, so Model Utility can see them damaged by unlearning. They
    # come first, so that ``full`` (retain + forget) is the same list for forget01/05/10, as in real TOFU:
    # one target serves all three splits.
    background = [TofuRow(q, a) for q, a, _ in REAL_AUTHORS + WORLD_FACTS]
    return TofuData(
        split=split, forget=forget, retain_train=background + [TofuRow(r.question, r.answer) for r in retain],
        retain_eval=retain[: len(forget) * 2 if len(retain) > len(forget) * 2 else len(retain)],
        holdout=[TofuRow(r.question, r.answer) for r in holdout],
        real_authors=simple(REAL_AUTHORS), world_facts=simple(WORLD_FACTS),
        source=f"synthetic(n_authors={n_authors}, seed={seed})", idk=list(BUILTIN_IDK),
    )


def synthetic_tune_split(n_authors: int = 40, seed: int = 0) -> TofuData:
    """What ``unlearn tune`` chooses settings on: as many generated authors as forget01 forgets, none of them in
    any evaluated split (not trained, forgotten, scored or used as holdout there). Its target learns the
    evaluated splits' whole training list plus the tune authors; its gold is trained on that list alone. Retain
    performance is scored on the retain authors that come right after forget10's retain-eval authors (no
    evaluated split scores them); the holdout authors are generated after the tune authors. Names are drawn
    past the largest evaluated holdout, so the tune, retain-eval and holdout authors are none of an evaluated
    split's (two generated authors can still share a book, hence a question and answer: a test checks the
    forget and retain-eval rows)."""
    n_tune = max(1, round(n_authors * SPLIT_PERCENT["forget01"] / 100))
    n_last = max(1, round(n_authors * max(SPLIT_PERCENT.values()) / 100))  # forget10's authors and holdout
    eval_from, eval_to = 2 * n_last, 2 * n_last + 2 * n_tune  # retain-eval authors: after forget10's (2 per forget author)
    if eval_to > n_authors - n_last:
        raise ValueError(f"{n_authors} synthetic authors leave no retain authors for the tune split's retain eval")
    names = synthetic_author_names(n_authors + n_last + 2 * n_tune, seed)
    first = n_authors + n_last
    rows = lambda some: [r for n in some for r in synthetic_author_rows(n, seed)]  # noqa: E731
    evaluated = synthetic_tofu("forget01", n_authors, seed)  # its `full` is every evaluated split's target list
    return replace(
        evaluated, split=TUNE_SPLIT, forget=rows(names[first:first + n_tune]), retain_train=evaluated.full,
        retain_eval=rows(names[eval_from:eval_to]),
        holdout=[TofuRow(r.question, r.answer) for r in rows(names[first + n_tune:])])


def synthetic_corpus(n_authors: int = 200, seed: int = 0) -> list[str]:
    """Text of many synthetic authors (all wordings), used to train the tiny model's tokenizer."""
    texts = []
    for name in synthetic_author_names(n_authors, seed):
        for r in synthetic_author_rows(name, seed):
            texts += [r.question, r.answer, r.paraphrased_question or "", r.paraphrased_answer or "", *r.perturbed_answers]
    for q, a, p in REAL_AUTHORS + WORLD_FACTS:
        texts += [q, a, *p]
    return texts + BUILTIN_IDK

