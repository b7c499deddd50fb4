"""Thin front ends: one module per ``nandoctor`` subcommand."""
