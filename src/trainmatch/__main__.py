"""``python -m trainmatch`` runs the command line."""

from trainmatch.cli import run

run()
