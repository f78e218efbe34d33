"""The `finops` command line."""
