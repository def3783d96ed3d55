"""Runs lm-evaluation-harness offline on a local model folder and local questions, with lm_eval's own shipped
task definitions (``wmdp_*``, ``mmlu_*``) pointed at a local JSON file, for the conformance tests of the WMDP
scorer and of exports."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import yaml

import numpy as np

from unlearn.benchmarks.wmdp.data import MCQ

WMDP_TASKS = {"biology": "wmdp_bio", "chemistry": "wmdp_chem", "cybersecurity": "wmdp_cyber"}


def shipped_task(subject: str) -> tuple[Path, dict, bool]:
    """lm_eval's own task definition for questions about ``subject``: (its folder, its task YAML as a dict, whether
    the subject is lm_eval's own). WMDP's three subjects are ``wmdp/wmdp_*.yaml``, an MMLU subject
    ``mmlu/default/mmlu_<subject>.yaml``; any other subject (the synthetic tier's fictitious domain) takes
    ``wmdp_bio``'s definition, whose description alone names a subject."""
    import lm_eval

    root = Path(lm_eval.__file__).parent / "tasks"
    mmlu = root / "mmlu" / "default" / f"mmlu_{subject.replace(' ', '_')}.yaml"
    own = subject in WMDP_TASKS or mmlu.is_file()
    path = (root / "wmdp" / f"{WMDP_TASKS[subject]}.yaml" if subject in WMDP_TASKS
            else mmlu if own else root / "wmdp" / "wmdp_bio.yaml")
    return path.parent, yaml.safe_load(path.read_text()), own


def run_lm_eval(model_dir: Path | str, questions: list[MCQ], folder: Path, task: str = "unlearn_conformance",
                batch_size: int = 4) -> tuple[float, np.ndarray]:
    """(acc, (n, 4) log-likelihoods of " A".." D" in question order) as lm_eval's HF backend computes them
    (float32, CPU, zero-shot). Every question must share one subject (the task description names it)."""
    subjects = {q.subject for q in questions}
    assert len(subjects) == 1, f"one subject per task, got {subjects}"
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import lm_eval
    from lm_eval.tasks import TaskManager

    folder.mkdir(parents=True, exist_ok=True)
    data = folder / f"{task}.json"
    data.write_text(json.dumps([{"question": q.question, "choices": list(q.choices), "answer": q.answer} for q in questions]))
    # lm_eval's shipped definition, pointed at the local file: its template (prompt, choices, target, metric) is
    # copied unchanged; only the dataset (the hub id -> our JSON) and, for a subject lm_eval does not ship, the
    # description change
    subject = subjects.pop()
    src, cfg, own = shipped_task(subject)
    shutil.copy(src / cfg["include"], folder / cfg["include"])
    cfg.pop("dataset_name", None)
    cfg.pop("tag", None)  # not a member of lm_eval's groups
    cfg.update(task=task, dataset_path="json", dataset_kwargs={"data_files": {"test": str(data), "dev": str(data)}})
    if not own:
        cfg["description"] = f"The following are multiple choice questions (with answers) about {subject}.\n\n"
    (folder / f"{task}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    out = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={model_dir},dtype=float32", tasks=[task],
                                  task_manager=TaskManager(include_path=str(folder), include_defaults=False),
                                  log_samples=True, device="cpu", batch_size=batch_size)
    samples = sorted(out["samples"][task], key=lambda s: s["doc_id"])
    loglik = np.array([[r[0] for r in s["filtered_resps"]] for s in samples], dtype=float)
    return float(out["results"][task]["acc,none"]), loglik
