"""A plan's upload files on disk, for audit or a manual upload.

``phaseNN-batchNNN.csv`` are byte for byte what ``apply`` sends. ``review.csv`` holds every
row with its PHASE and BATCH for people: cells a spreadsheet would run as a formula are
neutralized there (and only there), NUMBER keeping its ``+``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from numsync.ocp.csvcodec import spreadsheet_safe_cell, upload_file_name, write_operations
from numsync.ocp.vocabulary import OPERATION_COLUMNS
from numsync.workflow.plan import Plan


def write_upload_files(plan: Plan, folder: Path) -> list[Path]:
    """Write every batch of ``plan`` and ``review.csv`` into ``folder``; return the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    review = io.StringIO(newline="")
    writer = csv.writer(review, lineterminator="\r\n")
    writer.writerow(["PHASE", "BATCH", *OPERATION_COLUMNS])
    for p, phase in enumerate(plan.phases, start=1):
        for b, batch in enumerate(phase.batches, start=1):
            path = folder / upload_file_name(p, b)
            path.write_bytes(write_operations(batch.rows))
            written.append(path)
            for row in batch.rows:
                cells = row.cells()
                writer.writerow([p, b, *(spreadsheet_safe_cell(c, cells[c]) for c in OPERATION_COLUMNS)])
    review_path = folder / "review.csv"
    review_path.write_text(review.getvalue(), "utf-8")
    return written + [review_path]
