"""Caffe runtime logs: streaming parser, training trace and symptoms."""
