"""The walkthrough notebook (``docs/notebooks/walkthrough.ipynb``) runs top to bottom against a stack
with data that came the real way, its settings from the environment only, and draws its candles.

The executed copy, outputs included, is kept as ``test-output/walkthrough.ipynb``.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from infrastructure.settings import to_environment
from tests.fixtures.pipeline import STACK_TIMEOUT_S, PipelineStack

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "docs" / "notebooks" / "walkthrough.ipynb"
EXECUTED = ROOT / "test-output" / "walkthrough.ipynb"
CELL_TIMEOUT_S = 300


def text_of(outputs: list) -> str:
    parts = []
    for out in outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(out.data.get("text/plain", ""))
    return "\n".join(parts)


@pytest.mark.timeout(STACK_TIMEOUT_S)
def test_the_walkthrough_runs_against_a_stack_with_data(
    pipeline_stack: PipelineStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the kernel inherits this environment: the notebook finds the stack as `lakehouse` would
    for name, value in to_environment(pipeline_stack.settings).items():
        monkeypatch.setenv(name, value)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        # a folder without .env or pyproject.toml: nothing but the environment configures it
        resources={"metadata": {"path": str(pipeline_stack.workdir)}},
    )
    try:
        client.execute()  # raises CellExecutionError with the failing cell and its traceback
    finally:
        EXECUTED.parent.mkdir(exist_ok=True)
        nbformat.write(notebook, EXECUTED)

    code = [c for c in notebook.cells if c.cell_type == "code"]
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    pictures = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(pictures) == 1, "the candle chart was not drawn"
    everything = "\n".join(text_of(c.outputs) for c in code)
    assert pipeline_stack.settings.catalog.uri in everything
    assert "ohlcv_1m" in everything and "trades_rejected" in everything  # the table list
    # time travel: the first snapshot holds fewer rows than the table now
    travelled = re.search(r": ([\d,]+) rows then, ([\d,]+) rows now", everything)
    assert travelled is not None, everything
    then, now = (int(n.replace(",", "")) for n in travelled.groups())
    assert 0 < then < now, everything
    assert "messages bronze does not hold yet, per partition: none" in everything
