"""Built-in studies that run end to end through the gate (issue 7, docs/studies.md).

Each study is a registered data use (its ``use.yaml`` ships in ``uses/``), gated queries,
outputs released by a checker and published in the catalogue, and a report with charts::

    from candour import choices
    from candour.studies import run_study

    result = run_study("home-safety-visits", settings=settings,
                       purposes=choices.load_purposes(settings))
    result.figures        # {"estimate": -0.31, "ci_low": -0.40, "ci_high": -0.21}

The studies: ``home-safety-visits`` (did Safe and Well visits reduce falls?), ``family-needs``
(groups of families by pattern of need) and ``hmo-risk`` (likely unlicensed HMOs).
"""

from candour.studies.governance import StudyError, StudyRun, StudyUsers, ensure_users
from candour.studies.report import Chart, Report, read_report, report_dir, studies_dir
from candour.studies.runner import (
    STUDIES,
    StudyDef,
    StudyResult,
    get_study,
    list_studies,
    run_study,
)

__all__ = [
    "STUDIES",
    "Chart",
    "Report",
    "StudyDef",
    "StudyError",
    "StudyResult",
    "StudyRun",
    "StudyUsers",
    "ensure_users",
    "get_study",
    "list_studies",
    "read_report",
    "report_dir",
    "run_study",
    "studies_dir",
]
