"""Command-line interface (Typer). Nothing below this package imports it."""
