"""`rag eval --report DIR`: a Markdown page with PNG plots, readable in a browser or on GitHub."""
from __future__ import annotations

import json
from pathlib import Path

from rag.errors import ConfigError
from rag.evaluate import answer_table, beir_warnings, decision_table


def _plots(results: dict, directory: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("the report's plots need matplotlib: pip install -e '.[dev]'") from None
    made = []
    retrieval = results.get("retrieval")
    if retrieval:
        fig, ax = plt.subplots(figsize=(6, 4))
        for mode, r in retrieval.items():
            ax.plot(range(1, len(r["hit_curve"]) + 1), r["hit_curve"], marker="o", label=mode)
        ax.set(xlabel="k", ylabel="hit rate@k", title="Seed eval: hit rate@k per retrieval mode", ylim=(0, 1.02))
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(directory / "hit_rate_at_k.png", dpi=110)
        plt.close(fig)
        made.append("hit_rate_at_k.png")
        fig, ax = plt.subplots(figsize=(6, 4))
        for mode, r in retrieval.items():
            ax.hist(r["latency_ms"], bins=30, alpha=0.5, label=mode)
        ax.set(xlabel="warm query latency (ms)", ylabel="queries", title="Query latency per mode")
        ax.legend()
        fig.tight_layout()
        fig.savefig(directory / "latency.png", dpi=110)
        plt.close(fig)
        made.append("latency.png")
    return made


def write_report(results: dict, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["# rag eval report", ""]
    if "beir" in results:
        b = results["beir"]
        lines += [f"BEIR dataset `{b['dataset']}`: {b['queries']} queries, {b['documents']} documents, "
                  f"{b['chunks']} chunks.", "", "| mode | nDCG@10 | R@100 | MRR@10 | queries/s |",
                  "|---|---|---|---|---|"]
        lines += [f"| {m} | {v['ndcg@10']:.3f} | {v['recall@100']:.3f} | {v['mrr@10']:.3f} | {v['queries_per_s']} |"
                  for m, v in b["modes"].items()]
        if notes := beir_warnings(b):
            lines += [""] + [f"- Warning: {note}" for note in notes]
    if "retrieval" in results:
        metrics = ["hit@1", "hit@5", "hit@10", "mrr@10", "ndcg@10", "recall@10"]
        counts = ", ".join(f"{n} {t}" for t, n in results["by_type"].items())
        lines += [f"{results['questions']} questions: {counts}.", "",
                  "| mode | type | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 2) + "|"]
        for mode, r in results["retrieval"].items():
            lines.append(f"| **{mode}** | all | " + " | ".join(f"{r['all'][m]:.3f}" for m in metrics) + " |")
            lines += [f"| | {t} | " + " | ".join(f"{row[m]:.3f}" for m in metrics) + " |"
                      for t, row in r["by_type"].items()]
    answers = results.get("answers")
    if answers:
        lines += ["", f"## Answers (backend `{answers['backend']}`)", "", "| metric | value |", "|---|---|"]
        lines += [f"| {key} | {value} |" for key, value in answer_table(answers)]
        calibration = answers["refusal_calibration"]
        lines.append(f"| similarity threshold alone with the best balanced accuracy | {calibration['best_threshold']} "
                     f"(balanced accuracy {calibration['balanced_accuracy']}) |")
        lines += ["", "The answer decision on the questions its thresholds were chosen on (tune) and on questions "
                  "never looked at while choosing them (held out):", "", "| metric | tune | held out |",
                  "|---|---|---|"]
        lines += [f"| {key} | {tune} | {held} |" for key, tune, held in decision_table(answers)]
    for png in _plots(results, directory):
        lines += ["", f"![{png}]({png})"]
    if results.get("failures"):
        lines += ["", "## Below threshold", ""] + [f"- {f}" for f in results["failures"]]
    (directory / "results.json").write_text(json.dumps(results, indent=1))
    path = directory / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path
