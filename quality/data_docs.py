"""Great Expectations Data Docs: the suites and the newest quality runs' results as a static site.

Quality runs validate in an ephemeral context (``quality/checks.py``) and keep each run's results as
JSON under ``<data_dir>/quality/``. Data Docs need a file-backed context, so one is made afresh
under ``<data_dir>/quality/context/`` on every build: the suites as ``suites_for`` defines them, and
the validation results of the newest ``RESULTS_KEPT`` runs read back from their JSON. Rebuilding
from scratch keeps the context and the site bounded, and makes a build idempotent.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from infrastructure.settings import Settings
from quality.checks import DEFAULT_MAX_SILVER_LAG_S, suites_for

RESULTS_KEPT = 24  # a day of hourly runs
SITE = "lakehouse"


@dataclass(frozen=True)
class DataDocs:
    index: Path
    runs: int  # quality runs whose results are in the site
    validations: int  # suite validations among them


def newest_results(results_dir: Path, keep: int = RESULTS_KEPT) -> list[Path]:
    """The results files of the newest ``keep`` quality runs, oldest first (by write time)."""
    files = sorted(results_dir.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name))
    return files[-keep:] if keep > 0 else []


def build_data_docs(settings: Settings, out_dir: Path) -> DataDocs:
    """Build the Data Docs site into ``out_dir`` (its ``index.html``) from a new file context."""
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResultSchema,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    project = settings.data_dir / "quality" / "context"
    for folder in (project, out_dir):
        shutil.rmtree(folder, ignore_errors=True)
    context = gx.get_context(mode="file", project_root_dir=str(project))
    context.variables.analytics_enabled = False  # no usage events from a local docs build
    context.variables.save()
    for suite in suites_for(settings, DEFAULT_MAX_SILVER_LAG_S).values():
        context.suites.add(suite)

    schema = ExpectationSuiteValidationResultSchema()
    runs = newest_results(settings.data_dir / "quality")
    validations = 0
    for path in runs:
        document = json.loads(path.read_text())
        for name, raw in document.get("validations", {}).items():
            result = schema.load(raw)
            run_time = raw.get("meta", {}).get("run_id", {}).get("run_time") or document["checked_at"]
            key = ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(name=name),
                run_id=RunIdentifier(run_name=path.stem, run_time=run_time),  # run name: the window
                batch_identifier=name,
            )
            context.validation_results_store.set(key, result)
            validations += 1

    context.add_data_docs_site(
        site_name=SITE,
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(out_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    context.build_data_docs(site_names=[SITE])
    return DataDocs(out_dir / "index.html", len(runs), validations)
