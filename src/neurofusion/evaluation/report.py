"""The evaluation stage: metrics, tests, figures and a one-minute summary of every model.

Out-of-fold predictions are pooled over folds; with repeated cross-validation each
subject's probabilities are first averaged over the repeats, so every subject counts once
in the intervals and paired tests.

The main tables score the subjects with every modality of the cohort, so that all models
are compared on the same people. Subjects with only some modalities (scored by the
single-modality models of the modality they have, by ``fusion`` and by ``late_fusion``) are
reported separately, in ``missing_modality.tsv``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from neurofusion.evaluation.figures import confusion_figure, learning_curves_figure, roc_figure
from neurofusion.evaluation.metrics import METRICS, metrics_with_intervals, per_fold_summary
from neurofusion.evaluation.stats import bootstrap_auc_difference, mcnemar_exact, permutation_p
from neurofusion.fileio import atomic_path, write_text

log = logging.getLogger(__name__)

#: The study's table: its columns, in its order.
STUDY_COLUMNS = ("accuracy", "sensitivity", "f1", "precision")
#: The model compared with every single-modality model.
FUSION = "fusion"


def evaluation_outputs(root: str | Path) -> dict[str, Path]:
    """Files of the evaluation folder."""
    root = Path(root)
    return {
        "metrics": root / "metrics.tsv",
        "study_table": root / "study_table.tsv",
        "comparisons": root / "comparisons.tsv",
        "permutations": root / "permutations.tsv",
        "missing_modality": root / "missing_modality.tsv",
        "roc": root / "roc.png",
        "confusion": root / "confusion.png",
        "learning_curves": root / "learning_curves.png",
        "summary": root / "summary.md",
    }


def load_predictions(paths: Sequence[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A model's fold predictions: (every row, one row per subject averaged over repeats).

    Both tables have every subject the model scored; column ``complete`` tells those with
    every modality of the cohort.
    """
    rows = pd.concat([pd.read_csv(p, sep="\t") for p in paths], ignore_index=True)
    subjects = rows.groupby("subject", sort=True).agg(
        label=("label", "first"),
        probability=("probability", "mean"),
        modalities=("modalities", "first"),
        complete=("complete", "first"),
    )
    subjects["prediction"] = (subjects["probability"] >= 0.5).astype(int)
    return rows, subjects.reset_index()


def _complete(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of subjects with every modality."""
    return table[table["complete"] == 1].reset_index(drop=True)


def missing_modality_table(
    pooled: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]], n_boot: int, seed: int
) -> pd.DataFrame:
    """Accuracy, balanced accuracy and AUC (95 % intervals) of every model on the subjects
    with only some modalities, per model and set of modalities they have.

    Returns
    -------
    pandas.DataFrame
        ``model``, ``modalities``, ``n``, then ``metric``, ``value``, ``low``, ``high`` per
        metric (empty when every subject has every modality).
    """
    rows = []
    for name, (_, per_subject) in pooled.items():
        partial = per_subject[per_subject["complete"] == 0]
        for modalities, group in partial.groupby("modalities", sort=True):
            table = metrics_with_intervals(group["label"], group["probability"], n_boot, seed)
            for metric in ("accuracy", "balanced_accuracy", "auc"):
                value, low, high = table.loc[metric, ["value", "low", "high"]]
                rows.append(
                    {"model": name, "modalities": modalities, "n": len(group), "metric": metric,
                     "value": value, "low": low, "high": high}
                )  # fmt: skip
    return pd.DataFrame(
        rows, columns=["model", "modalities", "n", "metric", "value", "low", "high"]
    )


def _interval(value: float, low: float, high: float, percent: bool = True) -> str:
    scale = 100.0 if percent else 1.0
    if not np.isfinite(value):
        return "n/a"
    digits = 1 if percent else 2
    return f"{value * scale:.{digits}f} ({low * scale:.{digits}f}-{high * scale:.{digits}f})"


def evaluate(
    predictions: Mapping[str, Sequence[str | Path]],
    histories: Mapping[str, Sequence[str | Path]],
    permutations: Mapping[str, Sequence[str | Path]],
    single_modality: Sequence[str],
    skipped: Mapping[str, str],
    out: Mapping[str, str | Path],
    class_names: tuple[str, str],
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Write every file of :func:`evaluation_outputs`.

    Parameters
    ----------
    predictions : mapping
        ``{model: [predictions.tsv of each fold]}``.
    histories : mapping
        ``{model: [history.tsv of each fold]}`` of the deep models (learning curves).
    permutations : mapping
        ``{model: [TSV of each permutation job]}`` (label-permutation null
        distributions, pooled over the model's jobs).
    single_modality : sequence of str
        Models that use one modality, compared with ``fusion`` when it ran.
    skipped : mapping
        ``{model: reason}`` of enabled models that could not run.
    out : mapping
        :func:`evaluation_outputs`.
    class_names : (str, str)
        Negative and positive group labels.
    n_boot : int
        Bootstrap resamples of every interval and AUC difference.
    seed : int

    Returns
    -------
    pandas.DataFrame
        The metrics table.
    """
    every = {name: load_predictions(paths) for name, paths in predictions.items()}
    pooled = {name: (_complete(rows), _complete(subj)) for name, (rows, subj) in every.items()}
    subjects = {name: tables[1] for name, tables in pooled.items()}
    metric_rows = []
    for name, (rows, per_subject) in pooled.items():
        table = metrics_with_intervals(
            per_subject["label"], per_subject["probability"], n_boot, seed
        ).join(per_fold_summary(rows))
        metric_rows.append(table.rename_axis("metric").reset_index().assign(model=name))
    metrics = pd.concat(metric_rows, ignore_index=True)
    columns = ["model", "metric", "value", "low", "high", "method", "successes", "n"]
    metrics = metrics[[*columns, "fold_mean", "fold_sd", "folds"]]
    with atomic_path(out["metrics"]) as tmp:
        metrics.to_csv(tmp, sep="\t", index=False, float_format="%.4f")

    point = metrics.set_index(["model", "metric"])[["value", "low", "high"]]
    study = pd.DataFrame(
        {
            METRICS[m][0]: [_interval(*point.loc[(name, m)]) for name in pooled]
            for m in (*STUDY_COLUMNS, "specificity", "auc")
        },
        index=pd.Index(list(pooled), name="model"),
    )
    with atomic_path(out["study_table"]) as tmp:
        study.to_csv(tmp, sep="\t")

    perm_rows = []
    for name, paths in permutations.items():
        null = pd.concat([pd.read_csv(path, sep="\t") for path in paths], ignore_index=True)
        observed = metrics.loc[
            (metrics.model == name) & (metrics.metric == "balanced_accuracy"), "value"
        ].iloc[0]
        perm_rows.append(
            {
                "model": name,
                "permutations": len(null),
                "balanced_accuracy": observed,
                "null_mean": null["balanced_accuracy"].mean(),
                "null_95th": null["balanced_accuracy"].quantile(0.95),
                "p": permutation_p(observed, null["balanced_accuracy"]),
            }
        )
    perms = pd.DataFrame(
        perm_rows,
        columns=["model", "permutations", "balanced_accuracy", "null_mean", "null_95th", "p"],
    )
    with atomic_path(out["permutations"]) as tmp:
        perms.to_csv(tmp, sep="\t", index=False, float_format="%.4f")

    comparisons = []
    if FUSION in subjects:
        fusion = subjects[FUSION].set_index("subject")
        for other in (m for m in single_modality if m in subjects):
            b = subjects[other].set_index("subject").loc[fusion.index]
            mc = mcnemar_exact(fusion["label"], fusion["prediction"], b["prediction"])
            diff = bootstrap_auc_difference(
                fusion["label"], fusion["probability"], b["probability"], n_boot, seed
            )
            comparisons.append(
                {"model": FUSION, "versus": other, "fusion_only_correct": mc["a_only"],
                 "versus_only_correct": mc["b_only"], "mcnemar_p": mc["p"],
                 "auc_difference": diff["difference"], "auc_difference_low": diff["low"],
                 "auc_difference_high": diff["high"], "auc_difference_p": diff["p"]}
            )  # fmt: skip
    comparisons = pd.DataFrame(
        comparisons,
        columns=["model", "versus", "fusion_only_correct", "versus_only_correct", "mcnemar_p",
                 "auc_difference", "auc_difference_low", "auc_difference_high",
                 "auc_difference_p"],
    )  # fmt: skip
    with atomic_path(out["comparisons"]) as tmp:
        comparisons.to_csv(tmp, sep="\t", index=False, float_format="%.4f")
    partial = missing_modality_table(every, n_boot, seed)
    with atomic_path(out["missing_modality"]) as tmp:
        partial.to_csv(tmp, sep="\t", index=False, float_format="%.4f")

    roc_figure(subjects, out["roc"])
    confusion_figure(subjects, class_names, out["confusion"])
    curves = {
        name: pd.concat(
            [pd.read_csv(p, sep="\t").assign(fold=k) for k, p in enumerate(paths)],
            ignore_index=True,
        )
        for name, paths in histories.items()
    }
    learning_curves_figure(curves, out["learning_curves"])
    write_text(
        out["summary"],
        summary_markdown(metrics, study, perms, comparisons, partial, skipped, pooled),
    )
    return metrics


def summary_markdown(
    metrics: pd.DataFrame,
    study: pd.DataFrame,
    perms: pd.DataFrame,
    comparisons: pd.DataFrame,
    partial: pd.DataFrame,
    skipped: Mapping[str, str],
    pooled: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]],
) -> str:
    """The one-minute summary: the ranking, the study's table, the tests, the subjects
    with a missing modality, what was skipped."""
    n_subjects = {name: len(tables[1]) for name, tables in pooled.items()}
    bal = metrics[metrics.metric == "balanced_accuracy"].sort_values("value", ascending=False)
    lines = ["# Evaluation summary", ""]
    if not bal.empty:
        best = bal.iloc[0]
        lines += [
            f"Best balanced accuracy: **{best.model}** "
            f"{_interval(best.value, best.low, best.high)} % "
            f"({n_subjects[best.model]} subjects, out-of-fold). "
            "Intervals are 95 %: Wilson for proportions, stratified bootstrap for balanced "
            "accuracy, F1 and AUC. Differences whose intervals overlap are not evidence that "
            "one model is better; see the paired tests below.",
            "",
        ]
    lines += ["## The study's table (%, 95 % interval)", "", _markdown(study.reset_index()), ""]
    lines += ["## Does each model beat chance? (label permutation, whole pipeline)", ""]
    if perms.empty:
        lines += ["No permutation test was run (models.permutations are 0).", ""]
    else:
        table = perms.assign(
            verdict=np.where(perms.p < 0.05, "above chance", "not shown above chance")
        )
        lines += [_markdown(table.round(3)), ""]
    lines += ["## Fusion against each single-modality model (paired)", ""]
    if comparisons.empty:
        lines += ["Not run: fusion, or every single-modality model, is absent.", ""]
    else:
        lines += [
            "McNemar: exact binomial test on the subjects exactly one model classifies "
            "correctly. AUC difference: fusion minus the other, paired stratified bootstrap.",
            "",
            _markdown(comparisons.drop(columns="model").round(3)),
            "",
        ]
    if not partial.empty:
        lines += [
            "## Subjects with a missing modality (not in the tables above)",
            "",
            "Scored by the models that can use what they have; %, 95 % interval.",
            "",
            _markdown(
                partial.assign(
                    value=[_interval(*r) for r in partial[["value", "low", "high"]].to_numpy()]
                )
                .pivot(index=["model", "modalities", "n"], columns="metric", values="value")
                .reset_index()
            ),
            "",
        ]
    if skipped:
        lines += ["## Models not run", ""]
        lines += [f"- `{name}`: {reason}" for name, reason in skipped.items()] + [""]
    lines += [
        "Files: metrics.tsv (every metric with interval and per-fold mean and SD), "
        "study_table.tsv, permutations.tsv, comparisons.tsv, missing_modality.tsv, roc.png, "
        "confusion.png, learning_curves.png.",
        "",
    ]
    return "\n".join(lines)


def _markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table (no tabulate dependency)."""
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body])
