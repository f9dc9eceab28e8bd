"""``python -m trainmatch`` runs the command line."""

import os
import sys

# `-m` put the working folder first on the import path: take it off before anything else is imported,
# so that a json.py or numpy.py there never runs (the `trainmatch` command never has it there).
if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from trainmatch.cli import run  # noqa: E402

run()
