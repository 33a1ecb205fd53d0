"""The stage runner: the launcher every dvc.yaml command goes through, and its warm server."""
