"""Start, watch and stop the pipeline's services as OS processes: `python start_pipeline.py`.

`python start_pipeline.py status` shows one screen of a running pipeline instead (see
`python -m pipeline status`)."""

from __future__ import annotations

import sys

from pipeline_supervisor.cli import main

if __name__ == "__main__":
    sys.exit(main())
