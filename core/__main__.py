"""``python -m core`` runs the command line."""

from core.cli import main

main()
