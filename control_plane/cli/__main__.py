"""`python -m control_plane.cli`: the `sluice` command."""

from control_plane.cli.app import main

main()
